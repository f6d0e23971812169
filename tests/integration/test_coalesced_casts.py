"""Votes of concurrent requests go to Redis in one call (stores/coalesce.py and
`many_casts_source`); each is answered as if it had been cast alone, and one that fails
in Redis fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from domain.ids import new_id
from stores.redis_store import Ballot, LiveVotes, async_client, target_key, voters_key


async def test_concurrent_votes_share_a_call_and_each_gets_its_own_answer(settings, stack):
    redis = async_client(settings.redis_url)
    live = LiveVotes(redis)
    calls: list[int] = []
    cast_all = live._casts._answer_all

    async def counted(casts: list[Any]) -> Sequence[Any]:
        calls.append(len(casts))
        return await cast_all(casts)

    live._casts._answer_all = counted
    community, author = new_id(), new_id()
    first, second, unknown = new_id(), new_id(), new_id()
    for post in (first, second):
        await redis.hset(target_key(post), mapping={"c": community, "a": author})  # type: ignore[misc]
    users = [new_id() for _ in range(4)]
    try:
        outcomes = await asyncio.gather(
            live.cast(Ballot(first, users[0], 1, (), community)),
            live.cast(Ballot(first, users[1], 1, (), community)),
            live.cast(Ballot(first, users[2], -1, (), community)),
            live.cast(Ballot(second, users[0], -1, (), community)),
            live.cast(Ballot(unknown, users[3], 1, (), community)),
            live.cast(Ballot(first, users[0], 1, (), community)),  # a repeat: unchanged
        )
        assert calls == [6]
        assert [o.status for o in outcomes] == [1, 1, 1, 1, -1, 0]
        assert [o.score for o in outcomes[:3]] == [1, 2, 1]  # in the order cast
        assert outcomes[3].score == -1 and outcomes[3].author_id == author
        assert outcomes[0].community_id == community
        assert outcomes[5].previous == 1
        assert await redis.hgetall(voters_key(first)) == {  # type: ignore[misc]
            users[0].encode(): b"1",
            users[1].encode(): b"1",
            users[2].encode(): b"-1",
        }
        assert await redis.hmget(target_key(first), ["up", "dn"]) == [b"2", b"1"]  # type: ignore[misc]
        # the versions of one target's changes increase in the order they were made
        versions = [o.version for o in outcomes[:3]]
        assert versions == sorted(versions) and len(set(versions)) == 3
    finally:
        await redis.delete(*(target_key(p) for p in (first, second)))
        await redis.delete(*(voters_key(p) for p in (first, second)))
        await redis.aclose()


async def test_a_vote_that_fails_in_redis_fails_alone(settings, stack):
    redis = async_client(settings.redis_url)
    live = LiveVotes(redis)
    community, author = new_id(), new_id()
    good, broken = new_id(), new_id()
    await redis.hset(target_key(good), mapping={"c": community, "a": author})  # type: ignore[misc]
    await redis.set(target_key(broken), "not a hash")  # WRONGTYPE for the vote's HMGET
    try:
        ok, failed = await asyncio.gather(
            live.cast(Ballot(good, new_id(), 1, (), community)),
            live.cast(Ballot(broken, new_id(), 1, (), community)),
            return_exceptions=True,
        )
        assert not isinstance(ok, BaseException) and ok.status == 1 and ok.score == 1
        assert isinstance(failed, Exception) and "WRONGTYPE" in str(failed)
        assert await redis.get(target_key(broken)) == b"not a hash"
        # a lone vote still goes through the single-cast script
        again = await live.cast(Ballot(good, new_id(), -1, (), community))
        assert again.status == 1 and again.score == 0
    finally:
        await redis.delete(target_key(good), target_key(broken), voters_key(good))
        await redis.aclose()
