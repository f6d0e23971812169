"""The `cache_notices` channel: Postgres announces, at commit, every change to an
account's token state, a user's standing in a community or a community's settings
(triggers of migration identity/060). An API worker listens on one connection of its
own and forgets what it cached; around any gap in listening (a Postgres restart, a
lost connection) it treats everything it read as stale, since notices may have been
missed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import asyncpg

CHANNEL = "cache_notices"
RETRY_SECONDS = 0.5

log = logging.getLogger("stores.cache_notices")

Kind = Literal["account", "standing", "community"]


@dataclass(frozen=True)
class Notice:
    kind: Kind
    community_id: str | None = None
    user_id: str | None = None


def parse(payload: str) -> Notice | None:
    """`account:<user>`, `standing:<community>:<user>` or `community:<community>`."""
    kind, _, rest = payload.partition(":")
    if kind == "account" and rest:
        return Notice("account", user_id=rest)
    if kind == "community" and rest:
        return Notice("community", community_id=rest)
    if kind == "standing":
        community_id, _, user_id = rest.partition(":")
        if community_id and user_id:
            return Notice("standing", community_id=community_id, user_id=user_id)
    return None


class NoticeListener:
    """Calls `on_notice` for each notice, and `on_flowing(True)` once listening,
    `on_flowing(False)` as soon as it stops."""

    def __init__(
        self, dsn: str, on_notice: Callable[[Notice], None], on_flowing: Callable[[bool], None]
    ) -> None:
        self.dsn = dsn
        self.on_notice = on_notice
        self.on_flowing = on_flowing
        self.listening = asyncio.Event()

    def _received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        notice = parse(payload)
        if notice is not None:
            self.on_notice(notice)

    async def run(self) -> None:
        """Listens until cancelled, reconnecting after every loss."""
        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                await asyncio.sleep(RETRY_SECONDS)
                continue
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _c, ended=closed: ended.set())
            try:
                await conn.add_listener(CHANNEL, self._received)
                self.on_flowing(True)
                self.listening.set()
                while not closed.is_set() and not conn.is_closed():
                    try:
                        await asyncio.wait_for(closed.wait(), timeout=5)
                    except TimeoutError:
                        # A server that vanished without closing the socket: probe it.
                        await conn.execute("SELECT 1", timeout=2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
                log.warning("cache notices interrupted: %s", type(e).__name__)
            finally:
                self.listening.clear()
                self.on_flowing(False)
                if not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(RETRY_SECONDS)
