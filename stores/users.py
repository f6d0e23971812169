"""Users (identity database): accounts and the lookups sign-in, profiles and mentions
need. A registration appends its event to the outbox in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.errors import Conflict
from schemas.envelope import Envelope
from stores import outbox

COLUMNS = "user_id, username, email, password_hash, created_at"


@dataclass(frozen=True)
class UserRow:
    user_id: str
    username: str
    email: str
    password_hash: str
    created_at: datetime


class UserStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create_user(self, user: UserRow, event: Envelope) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    f"INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5)",
                    user.user_id,
                    user.username,
                    user.email,
                    user.password_hash,
                    user.created_at,
                )
            except asyncpg.UniqueViolationError as exc:
                field = "username" if "username" in (exc.constraint_name or "") else "email"
                raise Conflict(f"{field} is taken", {"field": field}) from None
            await outbox.append(conn, event)

    async def find_user_by_login(self, login: str) -> UserRow | None:
        row = await self.pool.fetchrow(
            f"SELECT {COLUMNS} FROM users WHERE deleted_at IS NULL"
            " AND (lower(username) = lower($1) OR lower(email) = lower($1))",
            login,
        )
        return UserRow(**dict(row)) if row else None

    async def find_user_by_name(self, username: str) -> UserRow | None:
        row = await self.pool.fetchrow(
            f"SELECT {COLUMNS} FROM users WHERE deleted_at IS NULL AND lower(username) = lower($1)",
            username,
        )
        return UserRow(**dict(row)) if row else None

    async def find_user_by_id(self, user_id: str) -> UserRow | None:
        row = await self.pool.fetchrow(
            f"SELECT {COLUMNS} FROM users WHERE deleted_at IS NULL AND user_id = $1",
            user_id,
        )
        return UserRow(**dict(row)) if row else None

    async def update_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.pool.execute(
            "UPDATE users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash
        )


async def existing_users(conn: asyncpg.Connection, names: set[str]) -> dict[str, str]:
    """Lower-cased username -> user id, for the `names` (any case) that are live accounts."""
    if not names:
        return {}
    rows = await conn.fetch(
        "SELECT lower(username) AS name, user_id FROM users"
        " WHERE lower(username) = ANY($1::text[]) AND deleted_at IS NULL",
        sorted(names),
    )
    return {r["name"]: r["user_id"] for r in rows}
