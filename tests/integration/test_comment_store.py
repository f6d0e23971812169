"""The CQL comment store on the real CQL server: slot allocation under contention from
two independent clients, and writes that re-sent or reordered events cannot undo."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain.ids import new_comment_id, new_id, new_post_id
from schemas.events import CommentCreated, CommentDeleted, CommentEdited
from stores import cql
from stores.comments import CommentStore, CommentWriter


@pytest.fixture(scope="module")
def sessions(settings, stack):
    connected = [cql.connect(settings) for _ in range(2)]
    yield [session for _cluster, session in connected]
    for cluster, _session in connected:
        cluster.shutdown()


async def test_two_clients_racing_for_slots_never_share_one(sessions):
    post_id = new_post_id(new_id())
    stores = [CommentStore(s) for s in sessions]
    claims = [store.allocate_slot(post_id, "000001") for store in stores for _ in range(30)]
    slots = await asyncio.gather(*claims)
    assert len(set(slots)) == len(slots) == 60
    assert min(slots) == 1  # gaps are allowed (a timed-out claim), collisions never


def test_resent_and_late_events_do_not_undo_later_ones(sessions):
    session = sessions[0]
    writer = CommentWriter(session)
    post_id = new_post_id(new_id())
    t0 = datetime.now(UTC)
    created = CommentCreated(
        comment_id=new_comment_id(post_id),
        post_id=post_id,
        community_id=new_id(),
        path="000001",
        author_id="author",
        author_name="alice",
        body="v1",
        created_at=t0,
    )
    common = {
        "comment_id": created.comment_id,
        "post_id": post_id,
        "community_id": created.community_id,
        "path": "000001",
        "author_id": "author",
    }
    edited = CommentEdited(
        **common, author_name="alice", body="v2", edited_at=t0 + timedelta(seconds=1)
    )
    writer.apply([created, edited, created])  # a re-sent create after the edit
    row = session.execute("SELECT body FROM comments WHERE post_id = %s", (post_id,)).one()
    assert row == ("v2",)

    deleted = CommentDeleted(**common, deleted_at=t0 + timedelta(seconds=2))
    late_edit = CommentEdited(
        **common, author_name="alice", body="v3", edited_at=t0 + timedelta(seconds=3)
    )
    writer.apply([deleted, late_edit, created])
    row = session.execute(
        "SELECT body, author_name, author_id, deleted FROM comments WHERE post_id = %s",
        (post_id,),
    ).one()
    assert row == ("[deleted]", "[deleted]", None, True)

    writer.write_scores(
        [(post_id, created.comment_id, 5, 1, 7), (post_id, created.comment_id, 1, 1, 3)]
    )
    score = session.execute(
        "SELECT upvotes, downvotes, score FROM comment_scores WHERE post_id = %s", (post_id,)
    ).one()
    assert score == (5, 1, 4)  # seq 3 arrived after seq 7 and lost
