"""The bounded ranking sets: a post joining a full set trims it to its best entries;
an update of a member does not."""

import asyncio

import pytest

from domain.ids import new_id
from stores.rankings import RankedListings, load_library, write_pipelined
from stores.reader_votes import reader_votes_key, reindex
from stores.redis_store import async_client, sync_client, voters_key


def test_sets_keep_their_best_entries(stack, settings):
    redis = sync_client(settings.redis_url)
    load_library(redis)
    key = f"rank:test{new_id()}:hot"
    try:
        for i, score in enumerate([5, 1, 4, 2, 3]):
            redis.fcall("rank_write", 1, key, f"p{i}", 3, repr(float(score)))
        assert redis.zrevrange(key, 0, -1, withscores=True) == [
            (b"p0", 5.0),
            (b"p2", 4.0),
            (b"p4", 3.0),
        ]
        # an update of a member moves it without trimming anything else
        redis.fcall("rank_write", 1, key, "p4", 3, repr(9.0))
        assert redis.zrevrange(key, 0, -1) == [b"p4", b"p0", b"p2"]
        # a trimmed post comes back when its rank rises, pushing out the lowest
        redis.fcall("rank_write", 1, key, "p1", 3, repr(6.0))
        assert redis.zrevrange(key, 0, -1) == [b"p4", b"p1", b"p0"]
    finally:
        redis.delete(key)
        redis.close()


def test_a_redis_that_lost_its_functions_gets_them_back_and_the_writes_land(stack, settings):
    """Redis restarted without persistence forgets its functions: the ranking sink's
    batch must not be refused (and dead-lettered) for it."""
    redis = sync_client(settings.redis_url)
    load_library(redis)
    key = f"rank:test{new_id()}:hot"
    try:
        redis.function_delete("agora_listings")
        queued: list[int] = []

        def queue(pipe) -> None:
            queued.append(1)
            pipe.fcall("rank_write", 1, key, "p1", 3, repr(2.0))
            pipe.fcall("rank_write", 1, key, "p2", 3, repr(1.0))

        write_pipelined(redis, queue)
        assert len(queued) == 2  # refused once for the missing function, then run again
        assert redis.zrevrange(key, 0, -1) == [b"p1", b"p2"]
        redis.fcall("rank_write", 1, key, "p3", 3, repr(3.0))  # installed for good
        assert redis.zrevrange(key, 0, 0) == [b"p3"]
    finally:
        redis.delete(key)
        load_library(redis)
        redis.close()


async def test_concurrent_readers_votes_are_answered_from_one_call_each_their_own(stack, settings):
    """Readers' vote lookups made at once share a Redis call (stores/coalesce.py); each
    reader still gets their own directions, in their page's order."""
    redis = sync_client(settings.redis_url)
    client = async_client(settings.redis_url)
    listings = RankedListings(client)
    await listings.load()
    posts = [f"test{new_id()}" for _ in range(3)]
    try:
        redis.hset(voters_key(posts[0]), mapping={"alice": 1, "bob": -1})
        redis.hset(voters_key(posts[2]), mapping={"alice": -1})
        reindex(redis)  # as `ops migrate` does: the readers' index holds these votes too
        calls: list[str] = []
        answer_all = listings._votes._answer_all

        async def counted(asks):
            calls.append("fcall")
            return await answer_all(asks)

        listings._votes._answer_all = counted
        alice, bob, carol, again = await asyncio.gather(
            listings.my_votes("alice", posts),
            listings.my_votes("bob", posts),
            listings.my_votes("carol", posts[:2]),
            listings.my_votes("alice", list(reversed(posts))),
        )
        assert alice == [1, 0, -1]
        assert bob == [-1, 0, 0]
        assert carol == [0, 0]
        assert again == [-1, 0, 1]
        assert calls == ["fcall"]
        assert await listings.my_votes("bob", []) == []
        with pytest.raises(ValueError):  # ids travel joined by commas
            await listings.my_votes("bob", [posts[0], "a,b"])
    finally:
        redis.delete(*(voters_key(p) for p in posts))
        redis.delete(*(reader_votes_key(u) for u in ("alice", "bob")))
        redis.close()
        await client.aclose()
