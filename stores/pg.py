"""asyncpg pools: one for the identity database and one per post shard."""

from __future__ import annotations

import asyncpg

from domain.ids import community_of_post
from stores.ring import ShardRing
from stores.settings import Settings


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
    assert pool is not None
    return pool


class ShardRouter:
    """Routes a community (or a post, via the community id in its id) to its shard's pool."""

    def __init__(self, ring: ShardRing, pools: dict[str, asyncpg.Pool]) -> None:
        self.ring = ring
        self.pools = pools

    @classmethod
    async def connect(cls, settings: Settings, max_size: int = 10) -> ShardRouter:
        pools = {
            db: await create_pool(settings.dsn(db), max_size=max_size) for db in settings.shard_dbs
        }
        return cls(ShardRing(settings.shard_dbs, settings.ring_vnodes), pools)

    def for_community(self, community_id: str) -> asyncpg.Pool:
        return self.pools[self.ring.shard_for(community_id)]

    def for_post(self, post_id: str) -> asyncpg.Pool:
        return self.for_community(community_of_post(post_id))

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()
