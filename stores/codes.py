"""One-time codes sent by mail (email verification, password reset) in Redis.

Keys: `otp:{purpose}:{user}` hash (d keyed digest of the code, n tries left), living
`CODE_TTL` seconds; `otpwait:{purpose}:{user}` a resend cooldown. A new code
replaces the previous one; a check is atomic (`lua/check_code.lua`).
"""

from __future__ import annotations

from enum import Enum

import redis.asyncio as aioredis

from stores.redis_store import script_source

CODE_TTL = 300
MAX_TRIES = 5
RESEND_COOLDOWN = 30


class CodeCheck(Enum):
    OK = 1
    WRONG = 0
    MISSING = -1


def code_key(purpose: str, user_id: str) -> str:
    return f"otp:{purpose}:{user_id}"


def cooldown_key(purpose: str, user_id: str) -> str:
    return f"otpwait:{purpose}:{user_id}"


class OneTimeCodes:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._check = redis.register_script(script_source("check_code"))

    async def may_send(self, purpose: str, user_id: str) -> bool:
        """False while the previous code of this purpose was sent under `RESEND_COOLDOWN`
        seconds ago (a mailbox cannot be flooded through the API)."""
        return bool(
            await self.redis.set(cooldown_key(purpose, user_id), 1, nx=True, ex=RESEND_COOLDOWN)
        )

    async def issue(self, purpose: str, user_id: str, digest: str) -> None:
        key = code_key(purpose, user_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping={"d": digest, "n": MAX_TRIES})
        pipe.expire(key, CODE_TTL)
        await pipe.execute()

    async def check(self, purpose: str, user_id: str, digest: str) -> CodeCheck:
        result = await self._check(keys=[code_key(purpose, user_id)], args=[digest])
        return CodeCheck(int(result))

    async def discard(self, purpose: str, user_id: str) -> None:
        await self.redis.delete(code_key(purpose, user_id), cooldown_key(purpose, user_id))
