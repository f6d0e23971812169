"""The search dataflow in-process (bytewax.testing, no servers): documents per event,
versions never going back, score coalescing, visibility and shadow-ban fan-out, and
poison dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bytewax.testing import TestingSink, run_main

from dataflows import search
from domain.ids import new_id
from schemas.events import (
    CommunityCreated,
    CommunityUpdated,
    ContentModerated,
    DeadLetter,
    MemberSanctioned,
    PostDeleted,
    PostEdited,
    UserDeleted,
)
from stores.search import COMMUNITIES, POSTS, EraseAuthor, Patch, Put, Remove, Write
from tests.unit.flows import Log, a_post, a_score, letters_at


def run(log: Log) -> tuple[list[Write], list[DeadLetter]]:
    out: list[Any] = []
    letters: list[DeadLetter] = []
    run_main(search.build_flow(log.source(), search.Sinks(TestingSink(out)), TestingSink(letters)))
    return [t.value for t in out], letters


def community(cid: str, visibility: str = "public") -> CommunityCreated:
    return CommunityCreated(
        community_id=cid,
        name="demo",
        description="d",
        visibility=visibility,  # type: ignore[arg-type]
        creator_id=new_id(),
        created_at=datetime.now(UTC) - timedelta(days=1),
    )


def test_create_edit_delete_and_an_older_edit_never_sent() -> None:
    cid = new_id()
    log = Log()
    log.event("communities", community(cid))
    post = a_post(cid, title="first title", body="<b>hi</b>")
    log.event("posts", post)
    t1 = post.created_at + timedelta(seconds=5)
    log.event(
        "posts",
        PostEdited(
            post_id=post.post_id,
            community_id=cid,
            author_id=post.author_id,
            title="second",
            edited_at=t1,
        ),
    )
    # older than the edit above: never sent
    log.event(
        "posts",
        PostEdited(
            post_id=post.post_id,
            community_id=cid,
            author_id=post.author_id,
            title="stale",
            edited_at=t1 - timedelta(seconds=1),
        ),
    )
    log.event(
        "posts",
        PostDeleted(
            post_id=post.post_id, community_id=cid, author_id=post.author_id, deleted_at=t1
        ),
    )
    log.event("posts", post)  # a re-sent create after the delete: nothing comes back
    writes, letters = run(log)
    assert not letters
    post_writes = [w for w in writes if w.index == POSTS]
    assert isinstance(post_writes[0], Put)
    assert post_writes[0].doc["visibility"] == "public"
    assert post_writes[0].doc["body"] == "<b>hi</b>"
    assert isinstance(post_writes[1], Patch) and post_writes[1].doc["title"] == "second"
    assert isinstance(post_writes[2], Remove)
    assert len(post_writes) == 3
    assert any(isinstance(w, Put) and w.index == COMMUNITIES for w in writes)


def test_scores_are_coalesced_and_flushed_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    cid = new_id()
    log = Log()
    post = a_post(cid)
    log.event("posts", post)
    for seq in range(1, 30):
        log.event("scores", a_score(post, seq, 0, seq))
    log.event("scores", a_score(post, 3, 0, 5))  # an older tally: ignored
    writes, _ = run(log)
    scores = [w.doc["score"] for w in writes if isinstance(w, Patch) and "score" in w.doc]
    # the 29 tallies arrive within a second of the create: one update, the latest
    assert scores == [29]


def test_visibility_change_and_shadow_ban_fan_out_to_the_posts() -> None:
    cid = new_id()
    log = Log()
    log.event("communities", community(cid))
    mine = a_post(cid)
    other = a_post(cid)
    log.event("posts", mine)
    log.event("posts", other)
    now = datetime.now(UTC)
    log.event(
        "communities",
        CommunityUpdated(
            community_id=cid,
            name="demo",
            description="d",
            visibility="private",
            actor_id=new_id(),
            updated_at=now,
        ),
    )
    log.event(
        "moderation",
        MemberSanctioned(
            community_id=cid, user_id=mine.author_id, kind="shadow_ban", actor_id=new_id(), at=now
        ),
    )
    log.event(
        "moderation",
        ContentModerated(
            community_id=cid,
            target_id=other.post_id,
            target_type="post",
            post_id=other.post_id,
            author_id=other.author_id,
            action="remove",
            actor_id=new_id(),
            at=now,
        ),
    )
    late = a_post(cid, author_id=mine.author_id)
    log.event("posts", late)
    writes, _ = run(log)
    patches = [w.doc for w in writes if isinstance(w, Patch) and w.index == POSTS]
    assert {d["post_id"] for d in patches if d.get("visibility") == "private"} == {
        mine.post_id,
        other.post_id,
    }
    assert [d["post_id"] for d in patches if d.get("shadowed") is True] == [mine.post_id]
    assert [d["post_id"] for d in patches if d.get("state") == "removed"] == [other.post_id]
    last = next(w for w in writes if isinstance(w, Put) and w.doc.get("post_id") == late.post_id)
    assert last.doc["shadowed"] is True and last.doc["visibility"] == "private"


def test_poison_between_good_records_is_dead_lettered() -> None:
    cid = new_id()
    log = Log()
    good = a_post(cid)
    log.event("posts", good)
    bad = log.forged("scores", a_score(good, 1, 0, 1), target_id="nope")
    bad_bytes = log.raw("moderation", b"\x00\xff")
    log.event("scores", a_score(good, 2, 0, 2))
    writes, letters = run(log)
    assert letters_at(letters) == [("moderation", bad_bytes), ("scores", bad)]
    assert all(d.dataflow == "search" for d in letters)
    assert [w.doc["post_id"] for w in writes if isinstance(w, Put) and w.index == POSTS] == [
        good.post_id
    ]


def test_a_deleted_account_is_erased_from_its_documents() -> None:
    log = Log()
    post = a_post()
    log.event("posts", post)
    log.event("users", UserDeleted(user_id=post.author_id, deleted_at=datetime.now(UTC)))
    writes, letters = run(log)
    assert not letters
    erase = [w for w in writes if isinstance(w, EraseAuthor)]
    assert [(e.author_id, e.name) for e in erase] == [(post.author_id, "[deleted]")]
