"""Moderation state in the identity database: sanctions (bans, mutes, shadow-bans),
post locks, the mod log and the moderation queue (reports and automatic flags).

Every change is one transaction that also appends its event (topic `moderation`) to
the outbox, so the dataflows apply it to the read models and a replay of the log
reproduces them. A sanction whose `until` has passed is over without any write: every
read here compares with the database's clock.

Other features use this module through its functions:
- `flag(conn, item, event)`: an automatic detector (e.g. the spam dataflow) puts an
  item of kind `spam` with its evidence in the queue (idempotent per detector and
  target).
- `is_shadow_banned`, `shadow_banned_users`: search and listings hide that content.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import asyncpg

from domain.errors import Conflict
from schemas.envelope import Envelope
from stores import outbox

SanctionKind = Literal["ban", "mute", "shadow_ban"]
QueueKind = Literal["report", "spam"]
AUTOMATIC_ACTOR = "system"  # actor id of actions no person took (automatic flags, bans)


@dataclass(frozen=True)
class LogEntry:
    actor_id: str
    actor_name: str
    action: str
    target: str
    reason: str = ""


@dataclass(frozen=True)
class QueueItem:
    """One flag on a post or comment: a user's report or a detector's flag."""

    item_id: str
    community_id: str
    target_id: str
    target_type: Literal["post", "comment"]
    kind: QueueKind
    source_id: str  # the reporter, or the detector (e.g. "system")
    reason: str
    evidence: Mapping[str, object] = field(default_factory=dict)


# The sanctions in force now of user $2 in community $1 (kind, until): also a subquery
# of the one-statement standing read in stores/communities.py.
IN_FORCE = (
    "SELECT kind, until FROM sanctions WHERE community_id = $1 AND user_id = $2"
    " AND (until IS NULL OR until > now())"
)


async def sanctions_in_force(
    conn: asyncpg.Connection | asyncpg.Pool, community_id: str, user_id: str
) -> dict[str, datetime | None]:
    """kind -> until (None: permanent) of the user's sanctions in force now."""
    rows = await conn.fetch(IN_FORCE, community_id, user_id)
    return {r["kind"]: r["until"] for r in rows}


async def is_shadow_banned(pool: asyncpg.Pool, community_id: str, user_id: str) -> bool:
    return "shadow_ban" in await sanctions_in_force(pool, community_id, user_id)


async def shadow_banned_users(pool: asyncpg.Pool, community_id: str) -> set[str]:
    rows = await pool.fetch(
        "SELECT user_id FROM sanctions WHERE community_id = $1 AND kind = 'shadow_ban'"
        " AND (until IS NULL OR until > now())",
        community_id,
    )
    return {r["user_id"] for r in rows}


async def shadow_bans(pool: asyncpg.Pool, community_id: str) -> dict[str, datetime | None]:
    """user id -> until (None: permanent) of the shadow-bans in force in the community."""
    rows = await pool.fetch(
        "SELECT user_id, until FROM sanctions WHERE community_id = $1 AND kind = 'shadow_ban'"
        " AND (until IS NULL OR until > now())",
        community_id,
    )
    return {r["user_id"]: r["until"] for r in rows}


async def _log(conn: asyncpg.Connection, community_id: str, entry: LogEntry) -> None:
    await conn.execute(
        "INSERT INTO mod_log (community_id, actor_id, actor_name, action, target, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        community_id,
        entry.actor_id,
        entry.actor_name,
        entry.action,
        entry.target,
        entry.reason,
    )


async def record(
    pool: asyncpg.Pool, community_id: str, entry: LogEntry, event: Envelope | None
) -> None:
    """An action whose only Postgres state is its mod log entry (remove, approve,
    flair): the entry and the event, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await _log(conn, community_id, entry)
        if event is not None:
            await outbox.append(conn, event)


async def sanction(
    pool: asyncpg.Pool,
    community_id: str,
    user_id: str,
    kind: SanctionKind,
    until: datetime | None,
    lift: bool,
    entry: LogEntry,
    event: Envelope,
) -> None:
    """Impose (or replace) or lift a sanction, log it and publish it."""
    async with pool.acquire() as conn, conn.transaction():
        if lift:
            await conn.execute(
                "DELETE FROM sanctions WHERE community_id = $1 AND user_id = $2 AND kind = $3",
                community_id,
                user_id,
                kind,
            )
        else:
            await conn.execute(
                "INSERT INTO sanctions (community_id, user_id, kind, until, reason, actor_id)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (community_id, user_id, kind)"
                " DO UPDATE SET until = EXCLUDED.until, reason = EXCLUDED.reason,"
                " actor_id = EXCLUDED.actor_id, created_at = now()",
                community_id,
                user_id,
                kind,
                until,
                entry.reason,
                entry.actor_id,
            )
        await _log(conn, community_id, entry)
        await outbox.append(conn, event)


async def set_lock(
    pool: asyncpg.Pool,
    community_id: str,
    post_id: str,
    locked: bool,
    entry: LogEntry,
    event: Envelope,
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        if locked:
            await conn.execute(
                "INSERT INTO post_locks (post_id, community_id, locked_by) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                post_id,
                community_id,
                entry.actor_id,
            )
        else:
            await conn.execute("DELETE FROM post_locks WHERE post_id = $1", post_id)
        await _log(conn, community_id, entry)
        await outbox.append(conn, event)


async def is_locked(pool: asyncpg.Pool, post_id: str) -> bool:
    return bool(await pool.fetchval("SELECT 1 FROM post_locks WHERE post_id = $1", post_id))


async def log_entries(
    pool: asyncpg.Pool, community_id: str, limit: int, before: int | None
) -> list[dict[str, object]]:
    """Newest first; `before` is the id of the last entry of the previous page."""
    rows = await pool.fetch(
        "SELECT id, actor_name AS actor, action, target, reason, created_at FROM mod_log"
        " WHERE community_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        community_id,
        before if before is not None else 2**62,
        limit,
    )
    return [dict(r) for r in rows]


async def _enqueue(conn: asyncpg.Connection, item: QueueItem) -> bool:
    status = await conn.execute(
        "INSERT INTO moderation_queue (item_id, community_id, target_id, target_type, kind,"
        " source_id, reason, evidence) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)"
        " ON CONFLICT (target_id, kind, source_id) DO NOTHING",
        item.item_id,
        item.community_id,
        item.target_id,
        item.target_type,
        item.kind,
        item.source_id,
        item.reason,
        json.dumps(dict(item.evidence)),
    )
    return bool(status.endswith(" 1"))


async def report(pool: asyncpg.Pool, item: QueueItem, event: Envelope) -> None:
    """A user's report: one per reporter per target (Conflict for a second one)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await _enqueue(conn, item):
            raise Conflict("you have reported this already", {"target_id": item.target_id})
        await outbox.append(conn, event)


async def flag(conn: asyncpg.Connection, item: QueueItem, event: Envelope | None = None) -> bool:
    """An automatic flag (kind `spam`, evidence as JSON) into the queue; idempotent per
    (target, kind, source). Call inside the caller's transaction; `event` (if any) is
    appended to the outbox only when the flag is new. Returns whether it was new."""
    new = await _enqueue(conn, item)
    if new and event is not None:
        await outbox.append(conn, event)
    return new


async def queue(pool: asyncpg.Pool, community_id: str, limit: int) -> list[dict[str, object]]:
    """Open items grouped by target, oldest first, with their kinds, reasons and count."""
    rows = await pool.fetch(
        "SELECT target_id, min(target_type) AS target_type, array_agg(DISTINCT kind) AS kinds,"
        " array_agg(reason ORDER BY created_at) AS reasons, count(*) AS count,"
        " min(created_at) AS created_at, jsonb_agg(evidence) FILTER (WHERE kind = 'spam')"
        " AS evidence FROM moderation_queue WHERE community_id = $1 AND resolved_at IS NULL"
        " GROUP BY target_id ORDER BY min(created_at), target_id LIMIT $2",
        community_id,
        limit,
    )
    return [
        {
            "target_id": r["target_id"],
            "target_type": r["target_type"],
            "kinds": sorted(r["kinds"]),
            "reasons": list(r["reasons"]),
            "count": int(r["count"]),
            "evidence": json.loads(r["evidence"]) if r["evidence"] else [],
            "created_at": r["created_at"],
        }
        for r in rows
    ]


async def resolve(
    pool: asyncpg.Pool,
    community_id: str,
    target_id: str,
    resolution: Literal["remove", "approve"],
    entry: LogEntry,
    event: Envelope,
) -> None:
    """A moderator removed or approved a target: close its queue items, log, publish."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE moderation_queue SET resolved_at = now(), resolution = $3"
            " WHERE community_id = $1 AND target_id = $2 AND resolved_at IS NULL",
            community_id,
            target_id,
            resolution,
        )
        await _log(conn, community_id, entry)
        await outbox.append(conn, event)


async def shadow_banned_in(
    pool: asyncpg.Pool | asyncpg.Connection, pairs: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which (community id, user id) pairs are shadow-banned now."""
    if not pairs:
        return set()
    rows = await pool.fetch(
        "SELECT community_id, user_id FROM sanctions WHERE kind = 'shadow_ban'"
        " AND (until IS NULL OR until > now())"
        " AND (community_id, user_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        [c for c, _ in pairs],
        [u for _, u in pairs],
    )
    return {(r["community_id"], r["user_id"]) for r in rows}


async def automatic_sanction(
    conn: asyncpg.Connection,
    community_id: str,
    user_id: str,
    kind: SanctionKind,
    reason: str,
    until: datetime | None,
    event: Envelope,
) -> None:
    """A sanction no person imposed (actor `AUTOMATIC_ACTOR`), e.g. the spam dataflow's
    shadow-ban: the same row, mod log entry and outbox event as a moderator's. Call
    inside the caller's transaction; `event` is its `member.sanctioned` (actor_id
    "system"), which the outbox relay publishes on the `moderation` topic."""
    await conn.execute(
        "INSERT INTO sanctions (community_id, user_id, kind, until, reason, actor_id)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (community_id, user_id, kind)"
        " DO UPDATE SET until = EXCLUDED.until, reason = EXCLUDED.reason,"
        " actor_id = EXCLUDED.actor_id, created_at = now()",
        community_id,
        user_id,
        kind,
        until,
        reason,
        AUTOMATIC_ACTOR,
    )
    await _log(conn, community_id, LogEntry(AUTOMATIC_ACTOR, "automod", kind, user_id, reason))
    await outbox.append(conn, event)
