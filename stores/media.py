"""Uploads (identity database, table `media`): created `pending` by the API in one
transaction with the `media.uploaded` outbox event, then moved by the media dataflow
to `processing` and to `ready` or `failed`. A status never moves backwards, so a
replayed or repeated event cannot undo a later state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from schemas.envelope import Envelope
from stores import outbox

RANK = {"pending": 0, "processing": 1, "ready": 2, "failed": 2}
COLUMNS = (
    "media_id, owner_id, status, content_type, size, width, height, original_key,"
    " thumbnail_key, thumb_width, thumb_height, reason, created_at"
)


@dataclass(frozen=True)
class MediaRow:
    media_id: str
    owner_id: str
    status: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    original_key: str
    thumbnail_key: str | None
    thumb_width: int | None
    thumb_height: int | None
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What the media dataflow found for one upload."""

    media_id: str
    status: str  # processing, ready, failed
    width: int | None = None
    height: int | None = None
    thumbnail_key: str | None = None
    thumb_width: int | None = None
    thumb_height: int | None = None
    reason: str | None = None


class MediaStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, row: MediaRow, event: Envelope) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO media (media_id, owner_id, status, content_type, size, width,"
                " height, original_key, created_at) VALUES ($1, $2, 'pending', $3, $4, $5, $6,"
                " $7, $8)",
                row.media_id,
                row.owner_id,
                row.content_type,
                row.size,
                row.width,
                row.height,
                row.original_key,
                row.created_at,
            )
            await outbox.append(conn, event)

    async def get(self, media_id: str) -> MediaRow | None:
        row = await self.pool.fetchrow(f"SELECT {COLUMNS} FROM media WHERE media_id = $1", media_id)
        return MediaRow(**dict(row)) if row else None


async def record(conn: asyncpg.Connection, outcomes: list[Outcome]) -> None:
    """The dataflow's writes: each outcome applies only if it moves the status on."""
    await conn.executemany(
        "UPDATE media SET status = $2, width = coalesce($3, width),"
        " height = coalesce($4, height), thumbnail_key = $5, thumb_width = $6,"
        " thumb_height = $7, reason = $8, updated_at = now()"
        " WHERE media_id = $1 AND (CASE status WHEN 'pending' THEN 0 WHEN 'processing' THEN 1"
        " ELSE 2 END) < $9",
        [
            (
                o.media_id,
                o.status,
                o.width,
                o.height,
                o.thumbnail_key,
                o.thumb_width,
                o.thumb_height,
                o.reason,
                RANK[o.status],
            )
            for o in outcomes
        ],
    )


async def reset_to_pending(conn: asyncpg.Connection) -> None:
    """Before a replay re-derives every upload's outcome."""
    await conn.execute(
        "UPDATE media SET status = 'pending', thumbnail_key = NULL, thumb_width = NULL,"
        " thumb_height = NULL, reason = NULL"
    )
