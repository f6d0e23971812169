"""A voter's standing kept in an API process's memory is checked by the vote script
against the version in Redis: a ban made through another process stops the very next
vote, with no change notice and no Postgres read per vote."""

from __future__ import annotations

import asyncpg
import pytest

from api.security import Principal
from api.services.access import Access
from domain.ids import new_id
from stores.communities import CommunityStore
from stores.redis_store import Ballot, LiveVotes, async_client, target_key, voters_key
from stores.standing_versions import StandingVersions
from tests.integration.test_cache_notices import a_community, a_user


@pytest.fixture
async def identity(settings, stack):
    pool = await asyncpg.create_pool(settings.dsn(settings.identity_db), min_size=1, max_size=2)
    yield pool
    await pool.close()


async def test_a_ban_through_another_process_stops_the_next_vote(settings, identity) -> None:
    redis = async_client(settings.redis_url)
    versions = StandingVersions(redis)
    here = Access(CommunityStore(identity), versions=versions)  # no notices: only versions
    elsewhere = Access(CommunityStore(identity), versions=versions)
    owner, voter = await a_user(identity), await a_user(identity)
    community_id = await a_community(identity, owner)
    post_id = new_id()
    await redis.hset(target_key(post_id), mapping={"c": community_id, "a": owner})  # type: ignore[misc]
    live = LiveVotes(redis)
    principal = Principal(voter, "voter", 0)

    standing, version = await here.voting_standing(community_id, principal)
    assert not standing.banned and version == ""
    assert (await live.cast(Ballot(post_id, voter, 1, (), community_id, True, version))).status == 1

    await elsewhere.standing_changed(
        community_id,
        voter,
        identity.execute(
            "INSERT INTO sanctions (community_id, user_id, kind, until, reason, actor_id)"
            " VALUES ($1, $2, 'ban', NULL, 'test', $3)",
            community_id,
            voter,
            owner,
        ),
    )
    # this process still holds the old standing, and the vote script refuses it
    stale, same = await here.voting_standing(community_id, principal)
    assert not stale.banned and same == version
    refused = await live.cast(Ballot(post_id, voter, -1, (), community_id, True, same))
    assert refused.status == -3
    assert await redis.hget(voters_key(post_id), voter) == b"1"  # type: ignore[misc]

    here.forget_voting_standing(community_id, voter)
    fresh, newer = await here.voting_standing(community_id, principal)
    assert fresh.banned and newer == "1"
    # '*' (no cached standing) is never refused on version grounds
    assert (await live.cast(Ballot(post_id, voter, 0, (), community_id, True, "*"))).status == 1
    await redis.aclose()
