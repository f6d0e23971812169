"""The post view: how a post looks in a listing and on its own page, built in one place.

Owns the Redis family `pv:{post}`: a post's listing fields that never change with
votes, as a JSON object, written by the content dataflow when the post is created
and by `rebuild-rankings`. A listing page is assembled inside Redis
(`lua/listings.lua`): each stored view followed by the live counts from `t:{post}`
(`COUNT_FIELDS`, in that order), then `my_vote` for a signed-in reader and
`pinned` for a pinned post. `listing_item` builds the same item from a shard row
(pages past a ranked set's end, views missing from Redis), so an item has the same
fields wherever it comes from.

A post row (`stores.posts`) and a `post.created` payload name their fields alike,
so every builder here takes either.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg
import orjson
import redis

from schemas.events import PostCreated
from stores.objects import media_url
from stores.redis_store import delete_matching

Post: TypeAlias = PostCreated | Mapping[str, Any] | asyncpg.Record

# The fields of the stored view (`pv:{post}`), in order.
VIEW_FIELDS = (
    "post_id",
    "community",
    "author",
    "title",
    "kind",
    "url",
    "created_at",
    "thumbnail_url",
)
# What `lua/listings.lua` appends to a stored view, in order, from `t:{post}`.
COUNT_FIELDS = ("upvotes", "downvotes", "score", "comment_count")
# Only on the page of one post.
DETAIL_FIELDS = ("body", "media_id", "media")
# Only on the page of one post, from `post_states` (absent on a new post: defaults).
STATE_DEFAULTS: dict[str, Any] = {
    "edited_at": None,
    "flair": None,
    "locked": False,
    "removed": False,
}


def view_key(post_id: str) -> str:
    return f"pv:{post_id}"


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _field(post: Post, name: str, default: Any = None) -> Any:
    if isinstance(post, PostCreated):
        return getattr(post, name, default)
    return post.get(name, default)


def static_view(post: Post) -> dict[str, Any]:
    """The listing fields that never change with votes (`VIEW_FIELDS`)."""
    return {
        "post_id": _field(post, "post_id"),
        "community": _field(post, "community_name"),
        "author": _field(post, "author_name"),
        "title": _field(post, "title"),
        "kind": _field(post, "kind"),
        "url": _field(post, "url"),
        "created_at": timestamp(_field(post, "created_at")),
        "thumbnail_url": media_url(_field(post, "thumbnail_key")),
    }


def encode_view(post: Post) -> bytes:
    """The stored view of `post` (the value of `pv:{post}`)."""
    return orjson.dumps(static_view(post))


def listing_item(post: Post, my_vote: int | None = None, pinned: bool = False) -> dict[str, Any]:
    """A listing item as `lua/listings.lua` builds it, from a shard row (its tallies
    and comment count; zero when absent)."""
    item = static_view(post)
    up, down = int(_field(post, "upvotes", 0) or 0), int(_field(post, "downvotes", 0) or 0)
    item["upvotes"] = up
    item["downvotes"] = down
    item["score"] = up - down
    item["comment_count"] = int(_field(post, "comment_count", 0) or 0)
    if my_vote is not None:
        item["my_vote"] = my_vote
    if pinned:
        item["pinned"] = True
    return item


def fill_missing(item: Mapping[str, Any], post: Post) -> dict[str, Any]:
    """A listing item Redis built without a stored view (marked `missing`), completed
    from the post's row; it keeps the live counts, `my_vote` and `pinned` Redis gave."""
    extra = {k: v for k, v in item.items() if k not in VIEW_FIELDS and k != "missing"}
    return {**static_view(post), **extra}


def post_view(post: Post, my_vote: int | None = None) -> dict[str, Any]:
    """A post on its own page: the listing item plus `DETAIL_FIELDS`."""
    view = listing_item(post, my_vote)
    for name in DETAIL_FIELDS:
        view[name] = _field(post, name)
    media_id = _field(post, "media_id")
    view["media"] = (
        {
            "media_id": media_id,
            "url": media_url(_field(post, "media_key")),
            "thumbnail_url": media_url(_field(post, "thumbnail_key")),
        }
        if media_id
        else None
    )
    for name, default in STATE_DEFAULTS.items():
        value = _field(post, name, default)
        view[name] = default if value is None else value
    view["deleted"] = _field(post, "deleted_at") is not None
    return view


def store(pipe: redis.Redis, post: Post) -> None:
    """Queue the write of the post's stored view (idempotent: it never changes)."""
    pipe.set(view_key(_field(post, "post_id")), encode_view(post))


def set_author(client: redis.Redis, post_ids: list[str], name: str) -> None:
    """Rewrite the author of stored views (an account was deleted); absent views stay
    absent (listings then build the item from the shard row)."""
    if not post_ids:
        return
    keys = [view_key(p) for p in post_ids]
    pipe = client.pipeline(transaction=False)
    found: list[bytes | None] = client.mget(keys)  # type: ignore[assignment]
    for key, raw in zip(keys, found, strict=True):
        if raw is None:
            continue
        view = orjson.loads(raw)
        view["author"] = name
        pipe.set(key, orjson.dumps(view))
    pipe.execute()


def wipe(client: redis.Redis) -> None:
    """Delete every stored view (before a replay rebuilds them)."""
    delete_matching(client, view_key("*"))
