"""The readers' vote index (stores/reader_votes.py): the vote scripts keep it in step
with the voters hashes, `reindex` rebuilds and repairs it, and the listing functions
read it once it is complete (the voters hashes before)."""

from __future__ import annotations

from domain.ids import new_id
from stores.rankings import RankedListings
from stores.reader_votes import INDEXED, reader_votes_key, reindex
from stores.redis_store import Ballot, LiveVotes, async_client, sync_client, target_key, voters_key


async def test_casts_and_reverts_keep_the_index_in_step(settings, stack):
    redis = async_client(settings.redis_url)
    live = LiveVotes(redis)
    community, author, user = new_id(), new_id(), new_id()
    first, second = new_id(), new_id()
    for post in (first, second):
        await redis.hset(target_key(post), mapping={"c": community, "a": author})  # type: ignore[misc]
    try:
        await live.cast(Ballot(first, user, 1, (), community))
        cast = await live.cast(Ballot(second, user, -1, (), community))
        index = reader_votes_key(user)
        assert await redis.hgetall(index) == {first.encode(): b"1", second.encode(): b"-1"}  # type: ignore[misc]
        await live.cast(Ballot(first, user, 0, (), community))  # withdrawn
        assert await redis.hgetall(index) == {second.encode(): b"-1"}  # type: ignore[misc]
        # a change whose event could not be published is undone in both hashes
        assert await live.revert(second, user, 0, cast.version)
        assert await redis.hgetall(index) == {}  # type: ignore[misc]
        assert await redis.hgetall(voters_key(second)) == {}  # type: ignore[misc]
    finally:
        keys = [target_key(p) for p in (first, second)] + [voters_key(p) for p in (first, second)]
        await redis.delete(*keys, reader_votes_key(user))
        await redis.aclose()


async def test_reindex_copies_missing_votes_and_drops_stale_ones(settings, stack):
    redis = sync_client(settings.redis_url)
    client = async_client(settings.redis_url)
    listings = RankedListings(client)
    await listings.load()
    alice, bob = new_id(), new_id()
    posts = [new_id() for _ in range(3)]
    try:
        # votes a release before the index wrote (voters hashes only), and index entries
        # it left behind: a withdrawn vote and a changed one
        redis.hset(voters_key(posts[0]), mapping={alice: 1, bob: -1})
        redis.hset(voters_key(posts[1]), mapping={alice: -1})
        redis.hset(reader_votes_key(alice), mapping={posts[1]: 1, posts[2]: 1})
        redis.delete(INDEXED)
        # until the index is complete, readers' votes come from the voters hashes
        assert await listings.my_votes(alice, posts) == [1, -1, 0]
        assert reindex(redis) >= 4
        assert redis.exists(INDEXED)
        assert redis.hgetall(reader_votes_key(alice)) == {
            posts[0].encode(): b"1",
            posts[1].encode(): b"-1",
        }
        assert redis.hgetall(reader_votes_key(bob)) == {posts[0].encode(): b"-1"}
        assert reindex(redis) == 0  # idempotent
        # the listing reads the index now: an entry only the index holds shows
        redis.hset(reader_votes_key(bob), posts[2], "1")
        assert await listings.my_votes(bob, posts) == [-1, 0, 1]
        assert await listings.my_votes(new_id(), posts) == [0, 0, 0]
    finally:
        redis.set(INDEXED, "1")
        redis.delete(*(voters_key(p) for p in posts))
        redis.delete(reader_votes_key(alice), reader_votes_key(bob))
        redis.close()
        await client.aclose()
