"""Rate-limit buckets in Redis: the one owner of the `rl:` key family and of the token
bucket Lua (`lua/token_bucket.lua`).

Keys: `rl:{limit name}:{subject}`, a string: the time (s) at which the bucket will be full
again (the GCRA form of a token bucket, see the Lua); subject a user id, a hashed client
address or a hashed login; each expires when the bucket would be full again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import redis
import redis.asyncio as aioredis

from domain.rate_limits import Charge, Verdict

CHUNK = Path(__file__).parent / "lua" / "token_bucket.lua"


def bucket_key(limit_name: str, subject: str) -> str:
    return f"rl:{limit_name}:{subject}"


def bucket_chunk() -> str:
    """The Lua that defines `take_buckets`; a script that takes buckets in the same call
    as its own work starts with it (see `charge_keys` and `charge_args`)."""
    return CHUNK.read_text()


TAKE = bucket_chunk() + "\nreturn take_buckets(KEYS, ARGV, 1, 1, #KEYS)\n"


def charge_keys(charges: Sequence[Charge]) -> list[str]:
    return [bucket_key(c.limit.name, c.subject) for c in charges]


def charge_args(charges: Sequence[Charge], cost: int = 1) -> list[str | int | float]:
    args: list[str | int | float] = []
    for c in charges:
        args += [c.limit.count, repr(float(c.limit.window)), cost]
    return args


def verdict_of(charges: Sequence[Charge], raw: Sequence[int | bytes]) -> Verdict:
    """Read the {allowed, index, remaining, reset, retry} answer of `take_buckets`."""
    allowed, index, remaining, reset, retry = (int(v) for v in raw[:5])
    if index == 0:
        return Verdict(bool(allowed))
    return Verdict(bool(allowed), charges[index - 1].limit, max(0, remaining), reset, retry)


class RateLimiter:
    """Take tokens from every bucket of a request or from none (one Lua call)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._take = client.register_script(TAKE)

    async def take(self, charges: Sequence[Charge]) -> Verdict:
        if not charges:
            return Verdict(True)
        raw = await self._take(keys=charge_keys(charges), args=charge_args(charges))
        return verdict_of(charges, raw)

    async def refund(self, charges: Sequence[Charge]) -> None:
        """Give back the token a request took (a login that turned out right)."""
        if charges:
            await self._take(keys=charge_keys(charges), args=charge_args(charges, cost=-1))


async def tokens_left(client: aioredis.Redis, charge: Charge) -> float:
    """How many tokens the charge's bucket holds now (operators, tests)."""
    raw = await client.get(bucket_key(charge.limit.name, charge.subject))
    if raw is None:
        return float(charge.limit.count)
    seconds, micros = await client.time()
    behind = max(0.0, float(raw) - (seconds + micros / 1e6))
    return charge.limit.count - behind * charge.limit.count / charge.limit.window


def clear_buckets(client: redis.Redis) -> None:
    """Forget every bucket (an operator's reset; tests)."""
    keys = list(client.scan_iter(match=bucket_key("*", "*"), count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
