"""Karma read model: identity database rows (the record) and a Redis cache (the fast
read), both written by the karma dataflow with a per-user sequence."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
import redis
import redis.asyncio as aioredis

from stores.pg import truncate_on_identity
from stores.redis_store import delete_matching, karma_key
from stores.settings import Settings

UPSERT_KARMA = (
    "INSERT INTO karma (user_id, post_karma, comment_karma, seq) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (user_id) DO UPDATE SET post_karma = EXCLUDED.post_karma,"
    " comment_karma = EXCLUDED.comment_karma, seq = EXCLUDED.seq, updated_at = now()"
    " WHERE karma.seq < EXCLUDED.seq"
)


async def upsert_karma(conn: asyncpg.Connection, rows: Iterable[tuple[str, int, int, int]]) -> None:
    """(user_id, post, comment, seq) rows."""
    await conn.executemany(UPSERT_KARMA, list(rows))


def truncate_karma(settings: Settings) -> None:
    truncate_on_identity(settings, ("karma",))


def drop_cached_karma(client: redis.Redis) -> None:
    delete_matching(client, karma_key("*"))


class KarmaStore:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
        self.pool = pool
        self.redis = redis

    async def get(self, user_id: str) -> tuple[int, int]:
        """(post, comment) karma: the cache, else the record, else nothing earned yet."""
        post, comment = await self.redis.hmget(karma_key(user_id), ["p", "c"])  # type: ignore[misc]
        if post is not None and comment is not None:
            return int(post), int(comment)
        row = await self.pool.fetchrow(
            "SELECT post_karma, comment_karma FROM karma WHERE user_id = $1", user_id
        )
        return (row["post_karma"], row["comment_karma"]) if row else (0, 0)


def cached_karma(client: redis.Redis, user_ids: list[str]) -> dict[str, int]:
    """Total karma of each user as the cache holds it now (0 when absent)."""
    pipe = client.pipeline(transaction=False)
    for user_id in user_ids:
        pipe.hmget(karma_key(user_id), ["p", "c"])
    return {
        user_id: int(p or 0) + int(c or 0)
        for user_id, (p, c) in zip(user_ids, pipe.execute(), strict=True)
    }
