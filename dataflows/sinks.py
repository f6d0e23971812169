"""Sink plumbing: a worker-local asyncio loop for asyncpg, shard connections, Redis."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import asyncpg
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from stores.ring import ShardRing
from stores.settings import Settings

X = TypeVar("X")
T = TypeVar("T")


class ShardConnections:
    """One asyncpg connection per shard, driven by a private event loop (sinks are sync)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ring = ShardRing(settings.shard_dbs, settings.ring_vnodes)
        self.loop = asyncio.new_event_loop()
        self.conns: dict[str, asyncpg.Connection] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def conn(self, shard: str) -> asyncpg.Connection:
        conn = self.conns.get(shard)
        if conn is None or conn.is_closed():
            conn = await asyncpg.connect(self.settings.dsn(shard))
            self.conns[shard] = conn
        return conn

    def group_by_shard(
        self, items: Iterable[X], community_of: Callable[[X], str]
    ) -> dict[str, list[X]]:
        groups: dict[str, list[X]] = defaultdict(list)
        for item in items:
            groups[self.ring.shard_for(community_of(item))].append(item)
        return groups

    def close(self) -> None:
        for conn in self.conns.values():
            self.run(conn.close())
        self.loop.close()


class _Partition(StatelessSinkPartition[X]):
    def __init__(self, write: Callable[[list[X]], None], close: Callable[[], None]) -> None:
        self._write = write
        self._close = close

    def write_batch(self, items: list[X]) -> None:
        self._write(items)

    def close(self) -> None:
        self._close()


class FunctionSink(DynamicSink[X]):
    """A sink from a factory returning (write_batch, close) per worker."""

    def __init__(
        self, factory: Callable[[], tuple[Callable[[list[X]], None], Callable[[], None]]]
    ) -> None:
        self.factory = factory

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partition[X]:
        write, close = self.factory()
        return _Partition(write, close)


def execute_on_shards(settings: Settings, sql: str) -> None:
    async def run() -> None:
        for shard in settings.shard_dbs:
            conn = await asyncpg.connect(settings.dsn(shard))
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

    asyncio.run(run())


def execute_on_identity(settings: Settings, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(settings.dsn(settings.identity_db))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())
