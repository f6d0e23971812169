"""Rebuild the Redis read model from the shards: `python -m dataflows rebuild-rankings`.

For when Redis lost its data (a restart without its AOF, a new node): ranked sets,
listing views, vote targets and pins come back from Postgres, which the dataflows keep
authoritative. (Replaying the `ranking` and `content` dataflows rebuilds them too.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis
from tqdm import tqdm

from dataflows.ranking import RankUpdate, write_ranks
from domain import ranking
from stores import post_views
from stores.communities import pins_by_community
from stores.placement import shard_names
from stores.posts import count_posts, scan_posts
from stores.rankings import load_library, store_pins
from stores.redis_store import mark_target, seed_live_counts, sync_client
from stores.settings import Settings

BATCH = 1000


def update_of(row: Mapping[str, Any], now: datetime) -> RankUpdate:
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


async def rebuild(settings: Settings) -> int:
    client = sync_client(settings.redis_url)
    load_library(client)
    now = datetime.now(UTC)
    total = 0
    try:
        for shard in await shard_names(settings):
            conn = await asyncpg.connect(settings.dsn(shard))
            try:
                count = await count_posts(conn)
                with tqdm(total=count, desc=shard, unit="post") as bar:
                    async for rows in scan_posts(conn, BATCH):
                        _write(client, rows, now)
                        bar.update(len(rows))
                total += count
            finally:
                await conn.close()
        identity = await asyncpg.connect(settings.dsn(settings.identity_db))
        try:
            pipe = client.pipeline(transaction=False)
            for community_id, post_ids in (await pins_by_community(identity)).items():
                store_pins(pipe, community_id, post_ids)
            pipe.execute()
        finally:
            await identity.close()
    finally:
        client.close()
    return total


def _write(client: redis.Redis, rows: list[Any], now: datetime) -> None:
    pipe = client.pipeline(transaction=False)
    for row in rows:
        write_ranks(pipe, update_of(row, now))
        post_views.store(pipe, row)
        mark_target(pipe, row["post_id"], row["community_id"], row["author_id"], "post")
        # live counts only where Redis has none (the API may have newer ones)
        seed_live_counts(pipe, row["post_id"], row["upvotes"], row["downvotes"])
    pipe.execute()


def main(settings: Settings) -> None:
    total = asyncio.run(rebuild(settings))
    print(f"rebuilt the Redis read model of {total} posts")
