"""`Idempotency-Key` on creations: a retry with the same key by the same user on the
same route returns the first answer (status and body) and creates nothing new.

- The key is 1-255 printable ASCII characters (400 otherwise).
- Only a success is kept (24 h). After a 4xx or 5xx the key is free again, so a retry
  runs again; a 503 whose event may still reach the log keeps the key until the
  broker's final answer: then it holds the created resource, or is free again.
- While the first request with a key runs, another with it gets 409
  `idempotency_key_in_use` (with Retry-After); the same key with another body or path
  gets 422 `idempotency_key_reused`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from sanic import HTTPResponse, Request

from api.commands import Command
from api.http import encode, json, json_bytes, platform
from api.security import Principal
from domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused, ValidationFailed
from stores.idempotency import Answered, Busy, Claimed, IdempotencyKeys, Reused
from stores.kafka import DeliveryPending, run_to_completion

log = logging.getLogger("api.idempotency")

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def client_key(request: Request) -> str | None:
    """The request's Idempotency-Key, or None; 400 if it is not a valid key."""
    values = request.headers.getall(HEADER, [])
    if not values:
        return None
    if len(values) > 1:
        raise ValidationFailed(f"give one {HEADER}", {HEADER: "repeated"})
    key = values[0]
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise ValidationFailed(
            f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable ASCII characters",
            {HEADER: "invalid"},
        )
    return key


def fingerprint(method: str, path: str, cmd: Command) -> str:
    """What a key's first request was: a retry must be the same request."""
    return hashlib.sha256(f"{method} {path}\n{cmd.model_dump_json()}".encode()).hexdigest()


async def create_once(
    request: Request,
    user: Principal,
    route: str,
    cmd: Command,
    status: int,
    create: Callable[[], Awaitable[dict[str, Any]]],
) -> HTTPResponse:
    """Runs `create` once per Idempotency-Key (if the request has one) and answers."""
    key = client_key(request)
    if key is None:
        return json(await create(), status)
    keys = platform(request).idempotency
    claim = await keys.claim(
        user.user_id, route, key, fingerprint(request.method, request.path, cmd)
    )
    if isinstance(claim, Answered):
        return json_bytes(claim.body, claim.status, {"Idempotent-Replayed": "true"})
    if isinstance(claim, Busy):
        raise IdempotencyKeyInUse(
            f"a request with this {HEADER} is still running; retry shortly", {HEADER: key}
        )
    if isinstance(claim, Reused):
        raise IdempotencyKeyReused(f"this {HEADER} was used with another request", {HEADER: key})
    body = await run_to_completion(_run(keys, claim, status, create))
    return json_bytes(body, status)


async def _run(
    keys: IdempotencyKeys,
    claim: Claimed,
    status: int,
    create: Callable[[], Awaitable[dict[str, Any]]],
) -> bytes:
    try:
        answer = await create()
    except DeliveryPending as pending:
        if pending.answer is None:
            await _release(keys, claim)
        else:
            first = encode(pending.answer)

            async def delivered() -> None:
                await keys.complete(claim, status, first)

            async def lost() -> None:
                await keys.release(claim)

            pending.when_settled(delivered=delivered, lost=lost)
        raise
    except Exception:
        await _release(keys, claim)
        raise
    body = encode(answer)
    try:
        await keys.complete(claim, status, body)
    except RedisError as exc:  # created all the same: answer it; the key frees itself
        log.warning("could not store an idempotent answer: %s", exc)
    return body


async def _release(keys: IdempotencyKeys, claim: Claimed) -> None:
    try:
        await keys.release(claim)
    except RedisError as exc:  # the key frees itself when its claim expires
        log.warning("could not release an idempotency key: %s", exc)
