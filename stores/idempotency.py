"""Idempotency keys of creations: the first answer to a (user, route, key), kept 24 h.

Key family (this module is its only reader and writer):
`idem:{user}:{route}:{sha256 of the client's key}` hash
  s  state: `p` pending (one request holds the key) or `d` done
  t  the holder's token (pending only)
  f  fingerprint of the request the key was first used with
  c, b  status code and body of the first answer (done only)

A pending key expires after `pending_seconds` (a crashed holder frees it), a done key
`keep_seconds` after its answer was stored. Only the holder's token completes or
releases a pending key, so a late holder cannot overwrite another request's answer.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

KEEP_SECONDS = 24 * 3600
PENDING_SECONDS = 60

# KEYS[1] the key; ARGV[1] token, ARGV[2] fingerprint, ARGV[3] pending ms.
# Returns {'claimed'} | {'reused'} | {'busy', ttl ms} | {'done', status, body}.
CLAIM = """
local s = redis.call('HGET', KEYS[1], 's')
if not s then
  redis.call('HSET', KEYS[1], 's', 'p', 't', ARGV[1], 'f', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'claimed'}
end
if redis.call('HGET', KEYS[1], 'f') ~= ARGV[2] then
  return {'reused'}
end
if s == 'p' then
  return {'busy', redis.call('PTTL', KEYS[1])}
end
return {'done', redis.call('HGET', KEYS[1], 'c'), redis.call('HGET', KEYS[1], 'b')}
"""

# KEYS[1] the key; ARGV[1] token, ARGV[2] status, ARGV[3] body, ARGV[4] keep seconds.
COMPLETE = """
if redis.call('HGET', KEYS[1], 's') ~= 'p' or redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 's', 'd', 'c', ARGV[2], 'b', ARGV[3])
redis.call('HDEL', KEYS[1], 't')
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# KEYS[1] the key; ARGV[1] token.
RELEASE = """
if redis.call('HGET', KEYS[1], 's') ~= 'p' or redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
"""


def idempotency_key(user_id: str, route: str, client_key: str) -> str:
    digest = hashlib.sha256(client_key.encode()).hexdigest()
    return f"idem:{user_id}:{route}:{digest}"


@dataclass(frozen=True)
class Claimed:
    """This request holds the key: it runs, then completes or releases it."""

    key: str
    token: str


@dataclass(frozen=True)
class Answered:
    """The key's first answer, to be returned again."""

    status: int
    body: bytes


@dataclass(frozen=True)
class Busy:
    """Another request holds the key and has not answered yet."""

    retry_after_ms: int


@dataclass(frozen=True)
class Reused:
    """The key was first used with another request (another body or path)."""


class IdempotencyKeys:
    def __init__(
        self,
        client: aioredis.Redis,
        keep_seconds: int = KEEP_SECONDS,
        pending_seconds: int = PENDING_SECONDS,
    ) -> None:
        self.keep_seconds = keep_seconds
        self.pending_seconds = pending_seconds
        self._claim = client.register_script(CLAIM)
        self._complete = client.register_script(COMPLETE)
        self._release = client.register_script(RELEASE)

    async def claim(
        self, user_id: str, route: str, client_key: str, fingerprint: str
    ) -> Claimed | Answered | Busy | Reused:
        key = idempotency_key(user_id, route, client_key)
        token = secrets.token_hex(8)
        reply = await self._claim(
            keys=[key], args=[token, fingerprint, self.pending_seconds * 1000]
        )
        outcome = _text(reply[0])
        if outcome == "claimed":
            return Claimed(key, token)
        if outcome == "reused":
            return Reused()
        if outcome == "busy":
            return Busy(max(int(reply[1]), 0))
        body = reply[2]
        return Answered(int(reply[1]), body if isinstance(body, bytes) else str(body).encode())

    async def complete(self, claim: Claimed, status: int, body: bytes) -> bool:
        """Store the first answer; False if the claim had expired (the answer is not kept)."""
        done = await self._complete(
            keys=[claim.key], args=[claim.token, status, body, self.keep_seconds]
        )
        return bool(done)

    async def release(self, claim: Claimed) -> bool:
        """Free the key: the request failed, a retry with it runs again."""
        return bool(await self._release(keys=[claim.key], args=[claim.token]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
