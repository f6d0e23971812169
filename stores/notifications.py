"""Notifications in the identity database: inserts (mentions dataflow), inbox reads and
read marks (API), delivery marks (WebSocket server).

Unread counts are cached in Redis. Every writer that changes a user's unread count
holds that user's transaction-scoped advisory lock while it counts and updates the
cache, so a slower writer can never overwrite a newer count with an older one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import redis

from domain.notifications import Notification
from stores.redis_store import delete_matching, unread_key

COLUMNS = (
    "notification_id, recipient_id, kind, actor_id, actor_name, target_id, post_id, snippet,"
    " created_at, read_at, delivered_at"
)
INSERT = (
    "INSERT INTO notifications (notification_id, recipient_id, kind, actor_id, actor_name,"
    " target_id, post_id, snippet, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT DO NOTHING"
)


async def lock_inboxes(conn: asyncpg.Connection, user_ids: Iterable[str]) -> None:
    """Take the users' inbox locks (in one order, so two writers cannot deadlock)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('inbox:' || u, 0))"
        " FROM (SELECT DISTINCT unnest($1::text[]) AS u ORDER BY 1) AS users",
        list(user_ids),
    )


async def insert(conn: asyncpg.Connection, rows: Iterable[Notification]) -> None:
    await conn.executemany(
        INSERT,
        [
            (
                n.notification_id,
                n.recipient_id,
                n.kind,
                n.actor_id,
                n.actor_name,
                n.target_id,
                n.post_id,
                n.snippet,
                n.created_at,
            )
            for n in rows
        ],
    )


async def undelivered(
    conn: asyncpg.Connection, ids: Sequence[str], since: datetime
) -> list[asyncpg.Record]:
    """Which of `ids` exist, are newer than `since` and were never delivered."""
    return list(
        await conn.fetch(
            f"SELECT {COLUMNS} FROM notifications WHERE notification_id = ANY($1::text[])"
            " AND delivered_at IS NULL AND created_at > $2 ORDER BY created_at, notification_id",
            list(ids),
            since,
        )
    )


async def unread_counts(conn: asyncpg.Connection, user_ids: Sequence[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT recipient_id, count(*) AS n FROM notifications"
        " WHERE recipient_id = ANY($1::text[]) AND read_at IS NULL GROUP BY recipient_id",
        list(user_ids),
    )
    counts = dict.fromkeys(user_ids, 0)
    counts.update({r["recipient_id"]: int(r["n"]) for r in rows})
    return counts


async def mark_read(conn: asyncpg.Connection, user_id: str, ids: Sequence[str] | None) -> None:
    """Mark the user's notifications `ids` (all of them when None) read."""
    if ids is None:
        await conn.execute(
            "UPDATE notifications SET read_at = now() WHERE recipient_id = $1 AND read_at IS NULL",
            user_id,
        )
    else:
        await conn.execute(
            "UPDATE notifications SET read_at = now() WHERE recipient_id = $1"
            " AND notification_id = ANY($2::text[]) AND read_at IS NULL",
            user_id,
            list(ids),
        )


async def inbox(
    pool: asyncpg.Pool,
    user_id: str,
    unread_only: bool,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[asyncpg.Record]:
    """Newest first; `after` is the (created_at, id) of the last item of the previous page."""
    params: list[Any] = [user_id, unread_only, limit]
    page = ""
    if after is not None:
        page = " AND (created_at, notification_id) < ($4, $5)"
        params += list(after)
    return list(
        await pool.fetch(
            f"SELECT {COLUMNS} FROM notifications WHERE recipient_id = $1"
            f" AND (NOT $2 OR read_at IS NULL){page}"
            " ORDER BY created_at DESC, notification_id DESC LIMIT $3",
            *params,
        )
    )


async def pending(pool: asyncpg.Pool, user_id: str, since: datetime) -> list[asyncpg.Record]:
    """The user's undelivered (and unread) notifications newer than `since`, oldest first."""
    return list(
        await pool.fetch(
            f"SELECT {COLUMNS} FROM notifications WHERE recipient_id = $1"
            " AND delivered_at IS NULL AND read_at IS NULL AND created_at > $2"
            " ORDER BY created_at, notification_id",
            user_id,
            since,
        )
    )


async def mark_delivered(pool: asyncpg.Pool, ids: Sequence[str]) -> None:
    await pool.execute(
        "UPDATE notifications SET delivered_at = now()"
        " WHERE notification_id = ANY($1::text[]) AND delivered_at IS NULL",
        list(ids),
    )


async def redact_actor(conn: asyncpg.Connection, actor_id: str, name: str) -> None:
    """Notifications caused by a deleted account name `name` as their actor."""
    await conn.execute(
        "UPDATE notifications SET actor_name = $2 WHERE actor_id = $1", actor_id, name
    )


def drop_cached_unread_counts(client: redis.Redis) -> None:
    """Forget every cached unread count (each is recounted on its next read)."""
    delete_matching(client, unread_key("*"))
