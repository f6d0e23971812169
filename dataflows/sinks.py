"""Sink plumbing: a worker-local asyncio loop for asyncpg, shard connections, Redis."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import asyncpg
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from stores.placement import ThreadedPlacement
from stores.ring import ShardRing
from stores.settings import Settings

X = TypeVar("X")
T = TypeVar("T")


class ShardConnections:
    """One asyncpg connection per shard, driven by a private event loop (sinks are sync).

    Routing follows the shared placement (`stores.placement`). A batch runs inside
    `run`, which holds the placement's gate: the view cannot change under a batch, and
    the version this writer reports means no write routed by an older view is in flight.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.placement = ThreadedPlacement(
            settings.dsn(settings.identity_db),
            "sink",
            seed=settings.shard_dbs,
            vnodes=settings.ring_vnodes,
        ).start()
        self.loop = asyncio.new_event_loop()
        self.conns: dict[str, asyncpg.Connection] = {}

    @property
    def ring(self) -> ShardRing:
        """The ring of active shards; route writes with `group_by_shard` instead."""
        return ShardRing(self.placement.view.ring, self.settings.ring_vnodes)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self.placement.batch():
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
        """Items per shard to write to; while its community moves, an item goes to both."""
        view = self.placement.view
        groups: dict[str, list[X]] = defaultdict(list)
        for item in items:
            for shard in view.write_shards(community_of(item)):
                groups[shard].append(item)
        return groups

    def close(self) -> None:
        for conn in self.conns.values():
            self.loop.run_until_complete(conn.close())
        self.loop.close()
        self.placement.stop()


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
