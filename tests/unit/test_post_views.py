"""One post view: a post listed from its Redis view (written from the `post.created`
event, counts spliced in by `lua/listings.lua`) and from its shard row have the same
fields, in the same order, with the same values."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson
import pytest

from domain.ids import new_id, new_post_id
from schemas.events import PostCreated
from stores.post_views import (
    COUNT_FIELDS,
    DETAIL_FIELDS,
    STATE_DEFAULTS,
    VIEW_FIELDS,
    encode_view,
    fill_missing,
    listing_item,
    post_view,
    view_key,
)
from stores.posts import POST_COLUMNS, STATE_FIELDS
from stores.redis_store import LUA

LISTINGS_LUA = (LUA / "listings.lua").read_text()


def event(**changes: object) -> PostCreated:
    community = new_id()
    fields: dict[str, object] = {
        "post_id": new_post_id(community),
        "community_id": community,
        "community_name": "rustaceans",
        "author_id": new_id(),
        "author_name": "ferris",
        "title": "Borrowing, explained",
        "kind": "link",
        "body": None,
        "url": "https://example.com/borrow",
        "media_id": None,
        "created_at": datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
    }
    fields.update(changes)
    return PostCreated.model_validate(fields)


def shard_row(p: PostCreated, up: int, down: int, comments: int) -> dict[str, object]:
    """The row `stores.posts` reads (POST_COLUMNS) for the post the content dataflow wrote."""
    tallies = {"upvotes": up, "downvotes": down, "score": up - down, "comment_count": comments}
    states = {name: None for name in STATE_FIELDS}
    return {**p.model_dump(), **tallies, **states}


def redis_item(
    view: bytes | None,
    post_id: str,
    counts: tuple[int, int, int],
    my_vote: int | None = None,
    pinned: bool = False,
) -> dict[str, object]:
    """What `item()` in lua/listings.lua returns: the stored view without its closing
    brace, the counts from `t:{post}`, then my_vote and pinned (checked below)."""
    up, down, comments = counts
    head = view[:-1].decode() if view else f'{{"post_id":"{post_id}","missing":true'
    parts = [head, f',"upvotes":{up},"downvotes":{down},"score":{up - down}']
    parts.append(f',"comment_count":{comments}')
    if my_vote is not None:
        parts.append(f',"my_vote":{my_vote}')
    if pinned:
        parts.append(',"pinned":true')
    return orjson.loads("".join(parts) + "}")


def test_the_lua_splices_the_count_fields_in_order():
    item = LISTINGS_LUA[LISTINGS_LUA.index("local function item(") :]
    item = item[: item.index("\nend\n")]
    spliced = re.findall(r'\',"(\w+)":\'', item)
    assert spliced == [*COUNT_FIELDS, "my_vote"]
    assert "'pv:' .. id" in item and view_key("x") == "pv:x"
    assert ',"pinned":true' in LISTINGS_LUA


def test_shard_rows_carry_every_field_the_builders_read():
    columns = {a or b for a, b in re.findall(r"\bAS (\w+)|\bp\.(\w+)", POST_COLUMNS)}
    p = event()
    assert set(shard_row(p, 0, 0, 0)) == columns


@pytest.mark.parametrize(
    ("my_vote", "pinned"), [(None, False), (1, False), (None, True), (-1, True)]
)
def test_a_post_lists_the_same_from_redis_and_from_its_shard(my_vote, pinned):
    p = event()
    from_redis = redis_item(encode_view(p), p.post_id, (5, 2, 7), my_vote, pinned)
    from_shard = listing_item(shard_row(p, 5, 2, 7), my_vote, pinned)
    assert list(from_redis) == list(from_shard)
    assert from_redis == from_shard
    assert list(from_shard)[: len(VIEW_FIELDS) + len(COUNT_FIELDS)] == [
        *VIEW_FIELDS,
        *COUNT_FIELDS,
    ]


def test_a_view_missing_from_redis_is_completed_from_the_shard():
    p = event(kind="text", url=None, body="hello")
    missing = redis_item(None, p.post_id, (3, 0, 1), my_vote=1, pinned=True)
    filled = fill_missing(missing, shard_row(p, 2, 0, 1))  # Redis' live counts win
    assert filled == redis_item(encode_view(p), p.post_id, (3, 0, 1), my_vote=1, pinned=True)


def test_the_post_page_is_the_listing_item_plus_its_details():
    p = event(kind="text", url=None, body="the body")
    row = shard_row(p, 1, 0, 0)
    page = post_view(row, my_vote=1)
    states = {**STATE_DEFAULTS, "deleted": False}
    assert page == {
        **listing_item(row, 1),
        "body": "the body",
        "media_id": None,
        "media": None,
        **states,
    }
    assert set(page) - set(listing_item(row, 1)) == {*DETAIL_FIELDS, *states}
    # accepted (202) before any tally: the same fields, counted zero
    assert post_view(p) == post_view(shard_row(p, 0, 0, 0))


def test_created_at_is_one_utc_timestamp_text_everywhere():
    p = event()
    stored = orjson.loads(encode_view(p))["created_at"]
    assert stored == "2025-03-01T12:30:15.123456Z"
    assert listing_item(shard_row(p, 0, 0, 0))["created_at"] == stored
