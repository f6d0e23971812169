"""A user's saved posts (identity database), newest saved first."""

from __future__ import annotations

from datetime import datetime

import asyncpg


class SavedPosts:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def save(self, user_id: str, post_id: str) -> None:
        await self.pool.execute(
            "INSERT INTO saved_posts (user_id, post_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            user_id,
            post_id,
        )

    async def unsave(self, user_id: str, post_id: str) -> None:
        await self.pool.execute(
            "DELETE FROM saved_posts WHERE user_id = $1 AND post_id = $2", user_id, post_id
        )

    async def page(
        self, user_id: str, limit: int, before: tuple[datetime, str] | None
    ) -> list[tuple[str, datetime]]:
        """(post id, saved at), newest first, older than `before` if given."""
        if before is None:
            rows = await self.pool.fetch(
                "SELECT post_id, saved_at FROM saved_posts WHERE user_id = $1"
                " ORDER BY saved_at DESC, post_id DESC LIMIT $2",
                user_id,
                limit,
            )
        else:
            rows = await self.pool.fetch(
                "SELECT post_id, saved_at FROM saved_posts WHERE user_id = $1"
                " AND (saved_at, post_id) < ($2, $3) ORDER BY saved_at DESC, post_id DESC"
                " LIMIT $4",
                user_id,
                before[0],
                before[1],
                limit,
            )
        return [(r["post_id"], r["saved_at"]) for r in rows]
