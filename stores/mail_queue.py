"""Outgoing mail waiting for the SMTP relay (Redis list `mail:queue`).

Requests only enqueue (one LPUSH); the mailer sends off the request path. Each entry
is sealed with the email key (`stores.pii.EmailVault.seal`): neither the address nor
a one-time code sits in Redis in clear. An entry being sent is moved to
`mail:sending` (LMOVE) so a crashed sender leaves it there to be requeued.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import orjson
import redis.asyncio as aioredis

from stores.pii import EmailVault

QUEUE = "mail:queue"
SENDING = "mail:sending"
CONTEXT = "mail"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    attempts: int = 0


class MailQueue:
    def __init__(self, redis: aioredis.Redis, vault: EmailVault) -> None:
        self.redis = redis
        self.vault = vault

    def _seal(self, mail: Mail) -> bytes:
        return self.vault.seal(CONTEXT, orjson.dumps(asdict(mail)))

    async def push(self, mail: Mail) -> None:
        await self.redis.lpush(QUEUE, self._seal(mail))  # type: ignore[misc]

    async def take(self, wait_seconds: int) -> tuple[bytes, Mail] | None:
        """The oldest entry, moved to the sending list; None after `wait_seconds`."""
        raw = await self.redis.blmove(QUEUE, SENDING, wait_seconds, "RIGHT", "LEFT")
        if raw is None:
            return None
        try:
            mail = Mail(**orjson.loads(self.vault.open(CONTEXT, raw)))
        except Exception:  # sealed under another key or damaged: unusable, drop it
            await self.redis.lrem(SENDING, 1, raw)  # type: ignore[misc]
            raise
        return raw, mail

    async def done(self, raw: bytes) -> None:
        await self.redis.lrem(SENDING, 1, raw)  # type: ignore[misc, arg-type]

    async def retry(self, raw: bytes, mail: Mail) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.lrem(SENDING, 1, raw)  # type: ignore[arg-type]
        pipe.lpush(QUEUE, self._seal(Mail(mail.to, mail.subject, mail.text, mail.attempts + 1)))
        await pipe.execute()

    async def requeue_stranded(self) -> int:
        """Entries a crashed sender left in `mail:sending` go back to the queue."""
        moved = 0
        while await self.redis.lmove(SENDING, QUEUE, "RIGHT", "RIGHT") is not None:
            moved += 1
        return moved

    async def length(self) -> int:
        return int(await self.redis.llen(QUEUE))  # type: ignore[misc]
