"""The production sinks on the real stores: a row a store refuses is found inside its
batch and dead-lettered with the store's reason; the batch's good rows are written."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from dataflows.accounts import DeletedAccounts
from dataflows.content import CommentWriter, PostWriter
from dataflows.guard import Backoff, GuardedPartition, Origin, Traced
from dataflows.sinks import ShardConnections
from domain.ids import new_comment_id, new_id, new_post_id
from schemas.events import CommentCreated, DeadLetter, PostCreated
from stores import cql
from stores.placement import shard_names
from stores.redis_store import sync_client


class Box:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def publish(self, letters: list[DeadLetter]) -> None:
        self.letters.extend(letters)


def unchecked_post(community_id: str, **changes: Any) -> PostCreated:
    """A post as an older producer might have logged it: no validation."""
    fields: dict[str, Any] = {
        "post_id": new_post_id(community_id),
        "community_id": community_id,
        "community_name": "guarded",
        "author_id": new_id(),
        "author_name": "alice",
        "title": "fine",
        "kind": "text",
        "body": "fine",
        "url": None,
        "media_id": None,
        "created_at": datetime.now(UTC),
    }
    fields.update(changes)
    return PostCreated.model_construct(**fields)


def traced(values: list[Any], topic: str) -> list[Traced[Any]]:
    return [Traced(Origin(topic, 0, 1000 + i, b"{}"), v) for i, v in enumerate(values)]


def guarded(writer: Any, box: Box) -> GuardedPartition[Any]:
    return GuardedPartition("content", "out", writer, box, Backoff(first=0.01, cap=0.05))


async def stored_posts(settings: Any, post_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for shard in await shard_names(settings):
        conn = await asyncpg.connect(settings.dsn(shard))
        try:
            rows = await conn.fetch("SELECT post_id FROM posts WHERE post_id = ANY($1)", post_ids)
            found |= {r["post_id"] for r in rows}
        finally:
            await conn.close()
    return found


def test_postgres_refusals_are_dead_lettered_and_the_rest_written(settings, stack) -> None:
    community = new_id()
    posts = [unchecked_post(community) for _ in range(10)]
    posts[2] = unchecked_post(community, body="a\x00b")  # Postgres: invalid byte 0x00
    posts[7] = unchecked_post(community, title="lone \ud800 surrogate")  # not encodable
    box = Box()
    writer = PostWriter(ShardConnections(settings), sync_client(settings.redis_url))
    try:
        guarded(writer, box).write_batch(traced([(new_id(), p) for p in posts], "posts"))
    finally:
        writer.close()
    ids = [p.post_id for p in posts]
    stored = asyncio.run(stored_posts(settings, ids))
    assert stored == {p for i, p in enumerate(ids) if i not in (2, 7)}
    assert sorted(d.offset for d in box.letters) == [1002, 1007]
    reasons = {d.offset: d.reason for d in box.letters}
    assert "0x00" in reasons[1002]
    assert "surrogate" in reasons[1007] or "encode" in reasons[1007]
    redis = sync_client(settings.redis_url)
    try:  # the refused post never became votable
        assert not redis.exists(f"t:{ids[2]}")
        assert redis.exists(f"t:{ids[0]}")
    finally:
        redis.close()


@pytest.fixture
def cql_session(settings, stack):
    cluster, session = cql.connect(settings)
    yield cluster, session


def test_cql_refusals_are_dead_lettered_and_the_rest_written(settings, cql_session) -> None:
    cluster, session = cql_session
    post_id = new_post_id(new_id())

    def comment(i: int, body: str) -> CommentCreated:
        return CommentCreated.model_construct(
            comment_id=new_comment_id(post_id),
            post_id=post_id,
            community_id=post_id.split("-")[1],
            parent_id=None,
            path=f"{i + 1:06d}",
            author_id=new_id(),
            author_name="bob",
            body=body,
            parent_author_id=None,
            created_at=datetime.now(UTC),
        )

    comments = [comment(i, f"comment {i}") for i in range(6)]
    comments[4] = comment(4, "lone \udfff")
    box = Box()
    writer = CommentWriter(
        cluster, session, sync_client(settings.redis_url), DeletedAccounts(settings)
    )
    try:
        guarded(writer, box).write_batch(traced(comments, "comments"))
    finally:
        writer.close()
    _cluster, reader = cql.connect(settings)
    try:
        rows = reader.execute("SELECT comment_id FROM comments WHERE post_id = %s", (post_id,))
        stored = {r[0] for r in rows}
    finally:
        _cluster.shutdown()
    assert stored == {c.comment_id for i, c in enumerate(comments) if i != 4}
    assert [d.offset for d in box.letters] == [1004]
