"""Users (identity database): accounts and the lookups sign-in, profiles and mentions
need. A registration or a deletion appends its event to the outbox in the same
transaction.

Emails are never stored in clear: `email_sealed` holds the AES-GCM ciphertext and
`email_hash` the keyed hash every lookup uses (`stores.pii.EmailVault`). Deleting an
account empties its row (email, password hash, name) but keeps it, so the id of what
the account wrote stays valid; its name goes to `retired_usernames` as a keyed hash
and is never issued again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.errors import Conflict
from schemas.envelope import Envelope
from stores import outbox
from stores.notifications import redact_actor
from stores.pii import EmailVault
from stores.refresh_tokens import revoke_all_for_user

COLUMNS = "user_id, username, password_hash, email_verified, token_epoch, created_at"
DELETED_NAME = "[deleted]"


@dataclass(frozen=True)
class UserRow:
    user_id: str
    username: str
    password_hash: str | None
    created_at: datetime
    email_verified: bool = False
    token_epoch: int = 0


@dataclass(frozen=True)
class AccountState:
    """What every authenticated request checks (through a short cache)."""

    token_epoch: int
    email_verified: bool
    deleted: bool


def _row(record: asyncpg.Record | None) -> UserRow | None:
    return UserRow(**dict(record)) if record else None


class UserStore:
    def __init__(self, pool: asyncpg.Pool, vault: EmailVault) -> None:
        self.pool = pool
        self.vault = vault

    async def create_user(self, user: UserRow, email: str, event: Envelope) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            retired = await conn.fetchval(
                "SELECT 1 FROM retired_usernames WHERE name_hash = $1",
                self.vault.lookup_hash(user.username),
            )
            if retired:
                raise Conflict("username is taken", {"field": "username"})
            try:
                await conn.execute(
                    "INSERT INTO users (user_id, username, email_hash, email_sealed,"
                    " password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    user.user_id,
                    user.username,
                    self.vault.lookup_hash(email),
                    self.vault.encrypt(user.user_id, email),
                    user.password_hash,
                    user.created_at,
                )
            except asyncpg.UniqueViolationError as exc:
                field = "username" if "username" in (exc.constraint_name or "") else "email"
                raise Conflict(f"{field} is taken", {"field": field}) from None
            await outbox.append(conn, event)

    async def find_user_by_login(self, login: str) -> UserRow | None:
        return _row(
            await self.pool.fetchrow(
                f"SELECT {COLUMNS} FROM users WHERE deleted_at IS NULL"
                " AND (lower(username) = lower($1) OR email_hash = $2)",
                login,
                self.vault.lookup_hash(login),
            )
        )

    async def find_user_by_email(self, email: str) -> UserRow | None:
        return _row(
            await self.pool.fetchrow(
                f"SELECT {COLUMNS} FROM users WHERE deleted_at IS NULL AND email_hash = $1",
                self.vault.lookup_hash(email),
            )
        )

    async def find_user_by_name(self, username: str) -> UserRow | None:
        return _row(
            await self.pool.fetchrow(
                f"SELECT {COLUMNS} FROM users WHERE deleted_at IS NULL"
                " AND lower(username) = lower($1)",
                username,
            )
        )

    async def find_user_by_id(self, user_id: str) -> UserRow | None:
        return _row(
            await self.pool.fetchrow(
                f"SELECT {COLUMNS} FROM users WHERE deleted_at IS NULL AND user_id = $1",
                user_id,
            )
        )

    async def email_of(self, user_id: str) -> str | None:
        sealed = await self.pool.fetchval(
            "SELECT email_sealed FROM users WHERE user_id = $1 AND deleted_at IS NULL", user_id
        )
        return self.vault.decrypt(user_id, sealed) if sealed is not None else None

    async def account_state(self, user_id: str) -> AccountState | None:
        row = await self.pool.fetchrow(
            "SELECT token_epoch, email_verified, deleted_at IS NOT NULL AS deleted"
            " FROM users WHERE user_id = $1",
            user_id,
        )
        if row is None:
            return None
        return AccountState(row["token_epoch"], row["email_verified"], row["deleted"])

    async def mark_email_verified(self, user_id: str) -> None:
        await self.pool.execute(
            "UPDATE users SET email_verified = true WHERE user_id = $1 AND deleted_at IS NULL",
            user_id,
        )

    async def update_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.pool.execute(
            "UPDATE users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash
        )

    async def reset_password(self, user_id: str, password_hash: str) -> None:
        """New password; every refresh token revoked and every access token refused."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE users SET password_hash = $2, token_epoch = token_epoch + 1"
                " WHERE user_id = $1 AND deleted_at IS NULL",
                user_id,
                password_hash,
            )
            await revoke_all_for_user(conn, user_id)

    async def delete_account(self, user_id: str, username: str, event: Envelope) -> None:
        """Empties the account in one transaction with its `user.deleted` event."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO retired_usernames (name_hash) VALUES ($1) ON CONFLICT DO NOTHING",
                self.vault.lookup_hash(username),
            )
            await conn.execute(
                "UPDATE users SET username = $2, email = NULL, email_hash = NULL,"
                " email_sealed = NULL, password_hash = NULL, email_verified = false,"
                " token_epoch = token_epoch + 1, deleted_at = now()"
                " WHERE user_id = $1 AND deleted_at IS NULL",
                user_id,
                f"{DELETED_NAME}:{user_id}",
            )
            await revoke_all_for_user(conn, user_id)
            await redact_actor(conn, user_id, DELETED_NAME)
            await outbox.append(conn, event)


async def seal_plain_emails(pool: asyncpg.Pool, vault: EmailVault) -> int:
    """Rows written before emails were sealed get their ciphertext and hash, and lose
    the clear address (run by `agora migrate`)."""
    rows = await pool.fetch("SELECT user_id, email FROM users WHERE email IS NOT NULL")
    for r in rows:
        await pool.execute(
            "UPDATE users SET email_hash = $2, email_sealed = $3, email = NULL WHERE user_id = $1",
            r["user_id"],
            vault.lookup_hash(r["email"]),
            vault.encrypt(r["user_id"], r["email"]),
        )
    return len(rows)


async def deleted_user_ids(conn: asyncpg.Connection, user_ids: list[str]) -> set[str]:
    """Which of `user_ids` belong to deleted accounts."""
    if not user_ids:
        return set()
    rows = await conn.fetch(
        "SELECT user_id FROM users WHERE user_id = ANY($1::text[]) AND deleted_at IS NOT NULL",
        user_ids,
    )
    return {r["user_id"] for r in rows}


async def all_deleted_user_ids(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT user_id FROM users WHERE deleted_at IS NOT NULL")
    return [r["user_id"] for r in rows]


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
