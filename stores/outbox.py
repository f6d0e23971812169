"""The transactional outbox (identity database): every write that others must learn
about appends its event here in the writer's own transaction; the relay
(`api/relay.py`) publishes unsent rows in id order and marks them sent.

Relays take a transaction-scoped advisory lock per batch, so two relays running at
once take turns and never publish out of order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from schemas.envelope import Envelope, encode, topic_of

RELAY_LOCK = 74_001  # advisory lock key the relays share
CHANNEL = "outbox"  # notified by a trigger whenever rows commit


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    key: str
    value: bytes


async def append(conn: asyncpg.Connection, event: Envelope) -> None:
    """Add `event` to the outbox; call inside the transaction of the write it announces."""
    await conn.execute(
        "INSERT INTO outbox (topic, key, event_id, value) VALUES ($1, $2, $3, $4)",
        topic_of(event).name,
        event.key,
        event.event_id,
        encode(event),
    )


async def lock_for_relay(conn: asyncpg.Connection) -> None:
    """Wait for the relays' lock; held until the current transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", RELAY_LOCK)


async def unsent(conn: asyncpg.Connection, limit: int) -> list[OutboxRow]:
    """The oldest unsent rows, in id order."""
    rows = await conn.fetch(
        "SELECT id, topic, key, value FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1",
        limit,
    )
    return [OutboxRow(r["id"], r["topic"], r["key"], bytes(r["value"])) for r in rows]


async def mark_sent(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    await conn.execute("UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", list(ids))


async def listen(conn: asyncpg.Connection, wake: Callable[..., Any]) -> None:
    """Call `wake` whenever new rows commit (the relay also polls)."""
    await conn.add_listener(CHANNEL, wake)
