"""The per-process cache serves its last value only while the store is unreachable."""

from __future__ import annotations

import asyncio

import pytest

from api.lasting_cache import LastingCache


class Store:
    def __init__(self) -> None:
        self.value = 1
        self.down = False
        self.reads = 0

    async def load(self) -> int:
        self.reads += 1
        if self.down:
            raise ConnectionRefusedError("store is down")
        return self.value


def test_fresh_entries_are_not_reloaded_and_changes_show_after_ttl() -> None:
    async def scenario() -> None:
        store, cache = Store(), LastingCache[str, int](ttl=60.0)
        assert await cache.get("k", store.load) == 1
        store.value = 2
        assert await cache.get("k", store.load) == 1
        assert store.reads == 1
        cache.forget("k")
        assert await cache.get("k", store.load) == 2

    asyncio.run(scenario())


def test_zero_ttl_reads_every_time_but_survives_an_outage() -> None:
    async def scenario() -> None:
        store, cache = Store(), LastingCache[str, int](ttl=0.0)
        assert await cache.get("k", store.load) == 1
        store.value = 2
        assert await cache.get("k", store.load) == 2
        store.down = True
        assert await cache.get("k", store.load) == 2
        assert store.reads == 3
        with pytest.raises(ConnectionRefusedError):
            await cache.get("never seen", store.load)

    asyncio.run(scenario())


def test_past_the_grace_the_outage_is_raised() -> None:
    async def scenario() -> None:
        store, cache = Store(), LastingCache[str, int](ttl=0.0, grace=0.0)
        await cache.get("k", store.load)
        store.down = True
        with pytest.raises(ConnectionRefusedError):
            await cache.get("k", store.load)

    asyncio.run(scenario())


def test_errors_about_the_request_are_never_masked() -> None:
    async def failing() -> int:
        raise LookupError("not found")

    async def scenario() -> None:
        cache = LastingCache[str, int](ttl=0.0)
        cache.put("k", 5)
        with pytest.raises(LookupError):
            await cache.get("k", failing)

    asyncio.run(scenario())


def test_the_oldest_entries_leave_first() -> None:
    cache = LastingCache[int, int](ttl=60.0, entries=2)
    for k in range(3):
        cache.put(k, k)

    async def scenario() -> None:
        store = Store()
        assert await cache.get(0, store.load) == 1  # evicted: read again
        assert await cache.get(2, store.load) == 2

    asyncio.run(scenario())


def test_peek_reads_without_loading() -> None:
    cache = LastingCache[str, int](ttl=0.0)
    assert cache.peek("k") is None
    cache.put("k", 3)
    assert cache.peek("k") == 3  # stale (ttl 0) but held
