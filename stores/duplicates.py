"""Recent content digests per user, for the duplicate pre-publish check: the owner of
the `dup:` key family. `dup:{user}:{sha256 of normalised content}` = 1, set with NX
and a TTL (24 h by default), so the first of two identical submissions wins even when
they race."""

from __future__ import annotations

import redis.asyncio as aioredis


def duplicate_key(user_id: str, digest: str) -> str:
    return f"dup:{user_id}:{digest}"


class RecentContent:
    def __init__(self, client: aioredis.Redis, window_seconds: int) -> None:
        self.client = client
        self.window_seconds = window_seconds

    async def claim(self, user_id: str, digest: str) -> bool:
        """True when this user published nothing with this digest within the window
        (and records it now); False for a duplicate."""
        done = await self.client.set(
            duplicate_key(user_id, digest), 1, nx=True, ex=self.window_seconds
        )
        return bool(done)

    async def release(self, user_id: str, digest: str) -> None:
        """Forget a claim whose content was not published after all (the publish
        failed), so that a retry is not taken for a duplicate."""
        await self.client.delete(duplicate_key(user_id, digest))
