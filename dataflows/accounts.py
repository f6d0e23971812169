"""Deleted accounts, as every dataflow that writes an author's name applies them.

Kafka keeps every event forever, and `post.created` / `comment.created` carry the
author's name; a replay must never bring a deleted account's name back. The identity
database is the authority: `users.deleted_at` is set in the same transaction as the
`user.deleted` event (outbox), before that event can reach any dataflow, and it is
not derived from the log, so a replay into empty stores still sees it.

A dataflow applies it with one call where it writes names:

    deleted = DeletedAccounts(settings)          # once per sink partition
    name = deleted.name(author_id, author_name)  # "[deleted]" for a deleted account
    # or, per batch: gone = deleted.among(ids); deleted.close() when the sink closes

and, to rewrite what it wrote before the deletion, handles `user.deleted` (see
`is_user_deleted` and the content dataflow's `AccountEraser`). Deletion is final, so
a positive answer is cached for good; other ids cost one indexed query per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import asyncpg

from dataflows.common import Event
from schemas.events import UserDeleted
from stores.settings import Settings
from stores.users import DELETED_NAME, deleted_user_ids

__all__ = ["DELETED_NAME", "DeletedAccounts", "is_user_deleted"]


def is_user_deleted(event: Event) -> UserDeleted | None:
    """The `user.deleted` payload of an event, for a `guard.map` step."""
    return event.payload if isinstance(event.payload, UserDeleted) else None


class DeletedAccounts:
    """Which authors are deleted accounts (blocking; for sinks, which are sync)."""

    def __init__(self, settings: Settings) -> None:
        self.dsn = settings.dsn(settings.identity_db)
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection | None = None
        self.known: set[str] = set()

    async def _query(self, ids: list[str]) -> set[str]:
        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(self.dsn)
        return await deleted_user_ids(self.conn, ids)

    def among(self, user_ids: Iterable[str]) -> set[str]:
        """The deleted accounts among `user_ids`."""
        ids = set(user_ids)
        unknown = sorted(ids - self.known)
        if unknown:
            self.known |= self.loop.run_until_complete(self._query(unknown))
        return ids & self.known

    def name(self, user_id: str, name: str) -> str:
        return DELETED_NAME if self.among([user_id]) else name

    def close(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            self.loop.run_until_complete(self.conn.close())
        self.loop.close()
