"""Refresh tokens (identity database): stored by digest, rotated within a family, and a
reused revoked token revokes its whole family."""

from __future__ import annotations

from datetime import datetime

import asyncpg


class RefreshTokenStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def store_refresh_token(
        self, token_hash: str, family_id: str, user_id: str, expires_at: datetime
    ) -> None:
        await self.pool.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)"
            " VALUES ($1, $2, $3, $4)",
            token_hash,
            family_id,
            user_id,
            expires_at,
        )

    async def rotate_refresh_token(
        self, old_hash: str, new_hash: str, expires_at: datetime
    ) -> tuple[str, str] | None:
        """Revoke `old_hash` and issue `new_hash` in its family.

        Returns (user_id, family_id), or None when the old token is unknown, expired
        or already revoked; a revoked one being reused revokes its whole family.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE refresh_tokens SET revoked_at = now()"
                " WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()"
                " RETURNING user_id, family_id",
                old_hash,
            )
            if row is None:
                await conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now())"
                    " WHERE family_id = (SELECT family_id FROM refresh_tokens"
                    " WHERE token_hash = $1 AND revoked_at IS NOT NULL)",
                    old_hash,
                )
                return None
            await conn.execute(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)"
                " VALUES ($1, $2, $3, $4)",
                new_hash,
                row["family_id"],
                row["user_id"],
                expires_at,
            )
            return row["user_id"], row["family_id"]

    async def revoke_refresh_token(self, token_hash: str) -> None:
        await self.pool.execute(
            "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now())"
            " WHERE token_hash = $1",
            token_hash,
        )


async def revoke_all_for_user(conn: asyncpg.Connection, user_id: str) -> None:
    """Every refresh token of the account (password reset, deletion); the caller's
    transaction."""
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE user_id = $1",
        user_id,
    )
