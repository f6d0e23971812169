"""Per-process fan-out: the users connected here, their Redis channels, and delivery marks.

Each connected user's channel (`inbox:{user}`) is subscribed once per process however
many sockets the user has open, and unsubscribed when the last one leaves; any number
of WebSocket processes run side by side, each receiving only its own users' pushes.

Slow clients: every socket has a bounded queue of pending notifications (the latest
unread count is kept apart, replaced rather than queued). If a socket's queue is full
when a notification arrives, the notification is dropped for that socket and the
socket is closed with 1013 (try again later): nothing waits for it, and since only
what was written to a socket is marked delivered, its client gets every missed
notification from storage when it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from observability.metrics import WS_DROPPED, WS_PUSHES
from schemas.push import notification_id_of
from stores.redis_store import inbox_channel

log = logging.getLogger("ws.hub")

CHANNEL_PREFIX = inbox_channel("")
SEEN_IDS = 256  # notification ids remembered per socket to drop repeats
SLOW_CLIENT = 1013
SUBSCRIBE_TIMEOUT = 5.0


class Socket(Protocol):
    async def send(self, message: bytes, text: bool | None = None) -> None: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Client:
    """One socket of one user: its pending pushes and the task that writes them."""

    def __init__(self, socket: Socket, user_id: str, queue_limit: int) -> None:
        self.socket = socket
        self.user_id = user_id
        self.queue_limit = queue_limit
        self.pending: deque[tuple[bytes, str | None]] = deque()
        self.unread: bytes | None = None
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.wake = asyncio.Event()
        self.dropped = False

    def offer(self, message: bytes, notification_id: str | None) -> bool:
        """Queue a push without waiting; False (and the socket closes) when it is full."""
        if self.dropped:
            return False
        if notification_id is None:
            self.unread = message  # only the latest count matters
        elif len(self.pending) >= self.queue_limit:
            WS_DROPPED.inc()
            self.dropped = True
            self.pending.clear()
            asyncio.get_running_loop().create_task(
                self.socket.close(SLOW_CLIENT, "too slow: reconnect for missed notifications")
            )
            return False
        else:
            self.pending.append((message, notification_id))
        self.wake.set()
        return True

    def backlog(self, messages: list[tuple[bytes, str]], unread: bytes | None) -> None:
        """Stored notifications go ahead of anything pushed meanwhile (repeats are dropped)."""
        self.pending.extendleft(reversed(messages))
        if self.unread is None:
            self.unread = unread
        self.wake.set()

    async def pump(self, delivered: Callable[[str], None]) -> None:
        """Write pushes in order until the socket closes."""
        while not self.dropped:
            await self.wake.wait()
            self.wake.clear()
            while self.pending and not self.dropped:
                message, notification_id = self.pending.popleft()
                if notification_id is not None:
                    if notification_id in self.seen:
                        continue
                    self.seen[notification_id] = None
                    if len(self.seen) > SEEN_IDS:
                        self.seen.popitem(last=False)
                await self.socket.send(message, text=True)
                WS_PUSHES.inc()
                if notification_id is not None:
                    delivered(notification_id)
            if self.unread is not None and not self.dropped:
                message, self.unread = self.unread, None
                await self.socket.send(message, text=True)


class Hub:
    def __init__(
        self,
        redis: aioredis.Redis,
        mark_delivered: Callable[[list[str]], Awaitable[None]],
    ) -> None:
        self.redis = redis
        self.mark_delivered = mark_delivered
        self.clients: dict[str, set[Client]] = {}
        self.pubsub = redis.pubsub()
        self.confirmed: dict[str, asyncio.Future[None]] = {}
        self.to_mark: set[str] = set()
        self.marks_waiting = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []

    @property
    def connections(self) -> int:
        return sum(len(c) for c in self.clients.values())

    async def start(self) -> None:
        # A process-wide channel keeps the subscription (and the reader) alive when empty.
        await self.pubsub.subscribe(f"{CHANNEL_PREFIX}-")
        self.tasks = [
            asyncio.create_task(self._read(), name="hub-read"),
            asyncio.create_task(self._flush_marks(), name="hub-marks"),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.to_mark:
            await self.mark_delivered(sorted(self.to_mark))
        await self.pubsub.aclose()

    async def attach(self, client: Client) -> None:
        """Register `client`; returns once its channel is subscribed (so nothing published
        after this returns can be missed)."""
        self.clients.setdefault(client.user_id, set()).add(client)
        channel = inbox_channel(client.user_id)
        confirmed = self.confirmed.get(channel)
        if confirmed is None:
            confirmed = asyncio.get_running_loop().create_future()
            self.confirmed[channel] = confirmed
            await self.pubsub.subscribe(channel)
        await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT)

    async def detach(self, client: Client) -> None:
        sockets = self.clients.get(client.user_id)
        if sockets is None:
            return
        sockets.discard(client)
        if not sockets:
            del self.clients[client.user_id]
            channel = inbox_channel(client.user_id)
            self.confirmed.pop(channel, None)
            await self.pubsub.unsubscribe(channel)

    def delivered(self, notification_id: str) -> None:
        self.to_mark.add(notification_id)
        self.marks_waiting.set()

    def dispatch(self, channel: str, data: bytes) -> None:
        sockets = self.clients.get(channel[len(CHANNEL_PREFIX) :])
        if not sockets:
            return
        notification_id = notification_id_of(data)
        for client in list(sockets):
            client.offer(data, notification_id)

    async def _read(self) -> None:
        while True:
            try:
                async for message in self.pubsub.listen():
                    kind = message["type"]
                    channel = _text(message["channel"])
                    if kind in (b"message", "message"):
                        self.dispatch(channel, message["data"])
                    elif kind in (b"subscribe", "subscribe"):
                        confirmed = self.confirmed.get(channel)
                        if confirmed is not None and not confirmed.done():
                            confirmed.set_result(None)
            except (RedisConnectionError, OSError):
                # redis-py resubscribes every channel when it reconnects.
                log.warning("redis connection lost; reconnecting")
                await asyncio.sleep(0.5)
            except Exception:  # a reader that died would push nothing to anyone, silently
                log.exception("push reader failed; reading on")
                await asyncio.sleep(0.5)

    async def _flush_marks(self) -> None:
        """Delivery marks, batched: one UPDATE for whatever was written meanwhile."""
        while True:
            await self.marks_waiting.wait()
            self.marks_waiting.clear()
            batch, self.to_mark = sorted(self.to_mark), set()
            try:
                await self.mark_delivered(batch)
            except Exception:  # keep them for the next round
                log.exception("could not mark %d notifications delivered", len(batch))
                self.to_mark.update(batch)
                await asyncio.sleep(1)
                self.marks_waiting.set()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
