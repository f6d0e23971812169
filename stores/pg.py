"""asyncpg pools: one for the identity database and one per post shard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import asyncpg

from domain.ids import community_of_post
from stores.placement import PlacementView, PlacementWatcher, shard_names
from stores.ring import ShardRing
from stores.settings import Settings

# A pool of a shard that left the placement is closed this long after, once no read
# routed by an older view can still be using it.
RETIRED_POOL_GRACE_SECONDS = 30.0


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Pooled connections never change session state (no SET, LISTEN or session locks:
    those get connections of their own), so a release needs no reset round trip."""


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, reset=_keep_session)
    assert pool is not None
    return pool


class ShardRouter:
    """Routes a community (or a post, via the community id in its id) to its shard's pool.

    With a placement watcher (what `connect` builds) routing follows the shared
    placement, so a rebalance's flip reaches the API without a restart.
    """

    def __init__(
        self,
        ring: ShardRing,
        pools: dict[str, asyncpg.Pool],
        placement: PlacementWatcher | None = None,
    ) -> None:
        self.ring = ring
        self.pools = pools
        self.placement = placement
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(cls, settings: Settings, max_size: int = 10) -> ShardRouter:
        router = cls(ShardRing(settings.shard_dbs, settings.ring_vnodes), {})

        async def adopt(view: PlacementView) -> None:
            # Pools first: once the view is adopted, requests may route to any shard in it.
            for shard in view.shards:
                if shard not in router.pools:
                    router.pools[shard] = await create_pool(settings.dsn(shard), max_size=max_size)
            for shard in set(router.pools) - set(view.shards):
                task = asyncio.get_running_loop().create_task(_close_later(router.pools.pop(shard)))
                router._closing.add(task)
                task.add_done_callback(router._closing.discard)
            router.ring = ShardRing(view.ring, view.vnodes)

        router.placement = PlacementWatcher(
            settings.dsn(settings.identity_db),
            "api",
            seed=settings.shard_dbs,
            vnodes=settings.ring_vnodes,
            on_change=adopt,
        )
        await router.placement.start()
        return router

    def shard_for(self, community_id: str) -> str:
        if self.placement is not None:
            return self.placement.view.shard_for(community_id)
        return self.ring.shard_for(community_id)

    def for_community(self, community_id: str) -> asyncpg.Pool:
        return self.pools[self.shard_for(community_id)]

    def for_post(self, post_id: str) -> asyncpg.Pool:
        return self.for_community(community_of_post(post_id))

    async def close(self) -> None:
        if self.placement is not None:
            await self.placement.stop()
        for pool in self.pools.values():
            await pool.close()


async def _close_later(pool: asyncpg.Pool) -> None:
    await asyncio.sleep(RETIRED_POOL_GRACE_SECONDS)
    with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        await pool.close()


def truncate_on_shards(settings: Settings, tables: Sequence[str]) -> None:
    """Empty `tables` on every shard of the placement (a replay starts from nothing).
    Only a table's owner in `stores/` names it."""

    async def run() -> None:
        for shard in await shard_names(settings):
            await _truncate(settings.dsn(shard), tables)

    asyncio.run(run())


def truncate_on_identity(settings: Settings, tables: Sequence[str]) -> None:
    """Empty `tables` of the identity database; only a table's owner names it."""
    asyncio.run(_truncate(settings.dsn(settings.identity_db), tables))


async def _truncate(dsn: str, tables: Sequence[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"TRUNCATE {', '.join(tables)}")
    finally:
        await conn.close()
