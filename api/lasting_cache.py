"""A per-process cache that outlives its store's outages.

An entry is fresh for `ttl` seconds (or less, when `ttl_of` says its value runs out
sooner); after that the loader is asked again, and if the store cannot be reached the
last value is served for up to `grace` seconds more. So a Postgres restart does not
stop requests that need only what this process already knew (a vote needs the
community's visibility and the voter's standing), while a change still reaches every
request within `ttl` whenever the store is up.

With change notices (stores/cache_notices.py) an owner raises `ttl` while they flow,
forgets an entry on its notice, and calls `expire_all` around any gap: entries read
before it are then read again, though still served while the store is unreachable.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from asyncpg import InterfaceError, OperatorInterventionError, PostgresConnectionError

K = TypeVar("K")
V = TypeVar("V")

# What asyncpg raises when the server is away, not about the query.
PG_UNREACHABLE: tuple[type[Exception], ...] = (
    PostgresConnectionError,
    OperatorInterventionError,  # shutting down, starting up
    InterfaceError,
    ConnectionError,
    OSError,
    TimeoutError,
)


class LastingCache(Generic[K, V]):
    def __init__(
        self,
        ttl: float,
        grace: float = 600.0,
        entries: int = 50_000,
        unreachable: tuple[type[Exception], ...] = PG_UNREACHABLE,
        ttl_of: Callable[[V], float] | None = None,
    ) -> None:
        self.ttl = ttl
        self.ttl_of = ttl_of
        self._valid_after = float("-inf")
        self.grace = grace
        self.entries = entries
        self.unreachable = unreachable
        # key -> (read at, fresh until, value)
        self._items: OrderedDict[K, tuple[float, float, V]] = OrderedDict()

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        held = self._items.get(key)
        if held is not None:
            read_at, fresh_until, value = held
            if now < fresh_until and now < read_at + self.ttl and read_at > self._valid_after:
                return value
        try:
            value = await load()
        except self.unreachable:
            if held is not None and now - held[0] < self.ttl + self.grace:
                return held[2]
            raise
        self.put(key, value, now)
        return value

    def put(self, key: K, value: V, at: float | None = None) -> None:
        read_at = time.monotonic() if at is None else at
        lasts = self.ttl if self.ttl_of is None else min(self.ttl, self.ttl_of(value))
        self._items[key] = (read_at, read_at + lasts, value)
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def expire_all(self) -> None:
        """Every entry read until now is read again on its next use."""
        self._valid_after = time.monotonic()

    def peek(self, key: K) -> V | None:
        """The value held for `key`, fresh or not, without loading."""
        held = self._items.get(key)
        return None if held is None else held[2]

    def forget(self, key: K) -> None:
        self._items.pop(key, None)
