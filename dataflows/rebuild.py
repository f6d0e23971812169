"""Rebuild the Redis read model from the shards: `python -m dataflows rebuild-rankings`.

For when Redis lost its data (a restart without its AOF, a new node): ranked sets,
listing views, vote targets and pins come back from Postgres, which the dataflows keep
authoritative. (Replaying the `ranking` and `content` dataflows rebuilds them too.)
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import orjson
from tqdm import tqdm

from dataflows.ranking import RankUpdate, write_ranks
from domain import ranking
from stores.placement import shard_names
from stores.rankings import load_library, pins_key, view_key
from stores.redis_store import sync_client, target_key
from stores.settings import Settings

BATCH = 1000


def update_of(row: asyncpg.Record, now: datetime) -> RankUpdate:
    ups, downs, created = row["upvotes"], row["downvotes"], row["created_at"]
    young = now - created < ranking.RISING_MAX_AGE
    return RankUpdate(
        post_id=row["post_id"],
        community_id=row["community_id"],
        created=created,
        upvotes=ups,
        downvotes=downs,
        hot=ranking.hot(ups - downs, created),
        rising=ranking.rising(ups - downs, created, now) if young else None,
        controversy=ranking.controversy(ups, downs),
        windows_in=tuple(ranking.windows_containing(created, now)),
        windows_out=(),
        rank_seq=0,
    )


def view_of(row: asyncpg.Record) -> bytes:
    return orjson.dumps(
        {
            "post_id": row["post_id"],
            "community": row["community_name"],
            "author": row["author_name"],
            "title": row["title"],
            "kind": row["kind"],
            "url": row["url"],
            "created_at": row["created_at"].isoformat().replace("+00:00", "Z"),
        }
    )


async def rebuild(settings: Settings) -> int:
    redis = sync_client(settings.redis_url)
    load_library(redis)
    now = datetime.now(UTC)
    total = 0
    try:
        for shard in await shard_names(settings):
            conn = await asyncpg.connect(settings.dsn(shard))
            try:
                count = await conn.fetchval("SELECT count(*) FROM posts")
                with tqdm(total=count, desc=shard, unit="post") as bar:
                    async with conn.transaction():
                        cursor = conn.cursor(
                            "SELECT p.*, coalesce(a.upvotes, 0) AS upvotes,"
                            " coalesce(a.downvotes, 0) AS downvotes FROM posts p"
                            " LEFT JOIN post_aggregates a ON a.post_id = p.post_id"
                        )
                        rows = []
                        async for row in cursor:
                            rows.append(row)
                            if len(rows) >= BATCH:
                                _write(redis, rows, now)
                                bar.update(len(rows))
                                rows = []
                        _write(redis, rows, now)
                        bar.update(len(rows))
                total += count
            finally:
                await conn.close()
        identity = await asyncpg.connect(settings.dsn(settings.identity_db))
        try:
            pins: dict[str, list[str]] = {}
            for r in await identity.fetch(
                "SELECT community_id, post_id FROM community_pins ORDER BY pinned_at, post_id"
            ):
                pins.setdefault(r["community_id"], []).append(r["post_id"])
            for community_id, post_ids in pins.items():
                redis.set(pins_key(community_id), orjson.dumps(post_ids))
        finally:
            await identity.close()
    finally:
        redis.close()
    return total


def _write(redis: object, rows: list[asyncpg.Record], now: datetime) -> None:
    pipe = redis.pipeline(transaction=False)  # type: ignore[attr-defined]
    for row in rows:
        write_ranks(pipe, update_of(row, now))
        pipe.set(view_key(row["post_id"]), view_of(row))
        pipe.hset(
            target_key(row["post_id"]),
            mapping={"c": row["community_id"], "a": row["author_id"], "k": "post"},
        )
        # live counters only where Redis has none (the API may have newer ones)
        pipe.hsetnx(target_key(row["post_id"]), "up", row["upvotes"])
        pipe.hsetnx(target_key(row["post_id"]), "dn", row["downvotes"])
    pipe.execute()


def main(settings: Settings) -> None:
    total = asyncio.run(rebuild(settings))
    print(f"rebuilt the Redis read model of {total} posts")
