"""A user's notifications: the inbox, read marks and the unread count (Redis-cached,
changed only under the user's inbox lock; see `stores/notifications.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from api.commands import MarkRead
from api.security import Principal
from domain.errors import ValidationFailed
from schemas.push import notification_view, unread_message
from stores import notifications as store
from stores.posts import decode_cursor, encode_cursor
from stores.redis_store import inbox_channel, unread_key


class NotificationService:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
        self.pool = pool
        self.redis = redis

    async def inbox(
        self, principal: Principal, unread_only: bool, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        after = None
        if cursor:
            created, notification_id = decode_cursor(cursor, 2)
            try:
                after = (datetime.fromisoformat(created), str(notification_id))
            except (TypeError, ValueError):
                raise ValidationFailed("cursor is not valid", {"cursor": "malformed"}) from None
        rows = await store.inbox(self.pool, principal.user_id, unread_only, limit + 1, after)
        items = [notification_view(r) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor([last["created_at"], last["notification_id"]])
        return {"items": items, "next_cursor": next_cursor}

    async def mark_read(self, principal: Principal, cmd: MarkRead) -> dict[str, int]:
        count = await self._recount(principal.user_id, cmd.ids if not cmd.all else None, True)
        return {"unread_count": count}

    async def unread_count(self, principal: Principal) -> dict[str, int]:
        cached = await self.redis.get(unread_key(principal.user_id))
        if cached is not None:
            return {"unread_count": int(cached)}
        return {"unread_count": await self._recount(principal.user_id, [], False)}

    async def _recount(self, user_id: str, read: list[str] | None, push: bool) -> int:
        """Mark `read` (all when None) read, then count and cache, under the inbox lock."""
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_inboxes(conn, [user_id])
            if read is None or read:
                await store.mark_read(conn, user_id, read)
            count = (await store.unread_counts(conn, [user_id]))[user_id]
            await self.redis.set(unread_key(user_id), count)
            if push:
                await self.redis.publish(inbox_channel(user_id), unread_message(count))
        return count
