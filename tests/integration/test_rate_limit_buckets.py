"""The token bucket Lua against the real Redis: all-or-nothing over several buckets,
exactly the quota under concurrency, refunds, expiry."""

from __future__ import annotations

import asyncio

from domain.ids import new_id
from domain.rate_limits import Charge, Limit
from stores.rate_limits import RateLimiter, bucket_key, tokens_left
from stores.redis_store import async_client


def test_exactly_the_quota_passes_under_concurrency(settings, stack) -> None:
    async def run() -> None:
        client = async_client(settings.redis_url)
        limiter = RateLimiter(client)
        charge = [Charge(Limit("post", 25, 3600), new_id())]
        verdicts = await asyncio.gather(*(limiter.take(charge) for _ in range(200)))
        assert sum(v.allowed for v in verdicts) == 25
        refused = [v for v in verdicts if not v.allowed]
        assert all(v.retry_after >= 144 and v.remaining == 0 for v in refused)
        ttl = await client.pttl(bucket_key("post", charge[0].subject))
        assert 0 < ttl <= 3600 * 1000
        await client.aclose()

    asyncio.run(run())


def test_all_or_nothing_and_refund(settings, stack) -> None:
    async def run() -> None:
        client = async_client(settings.redis_url)
        limiter = RateLimiter(client)
        user = new_id()
        wide = Charge(Limit("user_write", 100, 60), user)
        narrow = Charge(Limit("community", 1, 86400), user)
        first = await limiter.take([wide, narrow])
        assert first.allowed and first.limit == narrow.limit and first.remaining == 0
        second = await limiter.take([wide, narrow])
        assert not second.allowed and second.limit == narrow.limit
        assert second.retry_after > 86000
        # the refused request took nothing from the wide bucket
        assert 98.9 < await tokens_left(client, wide) <= 99.1
        await limiter.refund([narrow])
        assert (await limiter.take([narrow])).allowed
        await client.aclose()

    asyncio.run(run())


def test_remaining_and_retry_after_follow_the_quota(settings, stack) -> None:
    async def run() -> None:
        client = async_client(settings.redis_url)
        limiter = RateLimiter(client)
        charge = [Charge(Limit("report", 4, 3600), new_id())]
        remaining = [(await limiter.take(charge)).remaining for _ in range(4)]
        assert remaining == [3, 2, 1, 0]
        refused = await limiter.take(charge)
        # one token comes back every 3600 / 4 s
        assert not refused.allowed and 899 <= refused.retry_after <= 900
        assert 3599 <= refused.reset <= 3600
        assert -0.01 < await tokens_left(client, charge[0]) < 0.01
        await limiter.refund(charge)
        assert 0.99 < await tokens_left(client, charge[0]) < 1.01
        assert (await limiter.take(charge)).allowed
        await client.aclose()

    asyncio.run(run())
