"""Redis key family `stv:{community}`: a hash of user -> how many times that user's
standing in the community (role, approval, join request, sanctions) has changed.

It lets an API process keep a voter's standing in memory and still apply a ban to the
very next vote: the process remembers the version it read *before* reading the
standing from Postgres, and the vote script (`lua/cast_vote.lua`) compares it with
this hash in the same call that records the vote. Whoever changes a standing bumps the
version after the change commits and before answering (`Access.standing_changed`).
Postgres stays the source of truth; losing this hash only makes cached standings
look current, and the change notices of `stores/cache_notices.py` still forget them.
"""

from __future__ import annotations

import redis.asyncio as aioredis


def versions_key(community_id: str) -> str:
    return f"stv:{community_id}"


class StandingVersions:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def read(self, community_id: str, user_id: str) -> str:
        """The current version ('' when the standing never changed)."""
        raw = await self.client.hget(versions_key(community_id), user_id)  # type: ignore[misc]
        return raw.decode() if isinstance(raw, bytes) else (raw or "")

    async def bump(self, community_id: str, user_id: str) -> None:
        await self.client.hincrby(versions_key(community_id), user_id, 1)  # type: ignore[misc]
