"""Per-socket push queues: order, repeats, coalesced counts and the slow-client policy."""

from __future__ import annotations

import asyncio

import orjson

from schemas.push import notification_message, unread_message
from stores.redis_store import inbox_channel
from ws.hub import SLOW_CLIENT, Client, Hub


class FakeSocket:
    def __init__(self, stalled: bool = False) -> None:
        self.sent: list[dict] = []
        self.closed: int | None = None
        self.stalled = stalled
        self.progress = asyncio.Event()

    async def send(self, message: bytes, text: bool | None = None) -> None:
        if self.stalled:
            await asyncio.Event().wait()  # a client that never reads
        self.sent.append(orjson.loads(message))
        self.progress.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = code


def note(i: int) -> tuple[bytes, str]:
    nid = f"n{i}"
    return notification_message({"notification_id": nid}), nid


async def drain(socket: FakeSocket, count: int) -> None:
    while len(socket.sent) < count:
        socket.progress.clear()
        await asyncio.wait_for(socket.progress.wait(), 5)


async def test_backlog_first_repeats_dropped_latest_count_only():
    socket = FakeSocket()
    client = Client(socket, "u", queue_limit=10)
    client.offer(*note(2))  # pushed live while the backlog was being read
    client.offer(unread_message(1), None)
    client.offer(unread_message(2), None)
    client.backlog([note(1), note(2)], unread_message(0))
    marked: list[str] = []
    pump = asyncio.create_task(client.pump(marked.append))
    await drain(socket, 3)
    pump.cancel()
    assert [m.get("notification", {}).get("notification_id") for m in socket.sent] == [
        "n1",
        "n2",
        None,
    ]
    assert socket.sent[-1] == {"type": "unread_count", "unread_count": 2}
    assert marked == ["n1", "n2"]


async def ignore_marks(_ids: list[str]) -> None:
    """What a hub calls to mark notifications delivered, when a test does not care."""


async def test_a_stalled_socket_is_closed_and_never_slows_the_others():
    class FakeRedis:
        def pubsub(self) -> object:
            return object()

    hub = Hub(FakeRedis(), ignore_marks)  # type: ignore[arg-type]
    slow = Client(FakeSocket(stalled=True), "slow", queue_limit=5)
    fast_socket = FakeSocket()
    fast = Client(fast_socket, "fast", queue_limit=5)
    hub.clients = {"slow": {slow}, "fast": {fast}}
    pumps = [asyncio.create_task(c.pump(hub.delivered)) for c in (slow, fast)]
    for i in range(50):
        message, _nid = note(i)
        hub.dispatch(inbox_channel("slow"), message)
        hub.dispatch(inbox_channel("fast"), message)
        await asyncio.sleep(0)  # let the fast socket's pump run
    await drain(fast_socket, 50)
    await asyncio.sleep(0)
    assert slow.dropped and slow.socket.closed == SLOW_CLIENT  # type: ignore[attr-defined]
    assert not slow.offer(*note(99))
    assert len(fast_socket.sent) == 50 and fast_socket.closed is None
    for pump in pumps:
        pump.cancel()


async def test_the_reader_outlives_an_error_it_did_not_foresee():
    """Only connection errors were caught: anything else ended the reader silently, and
    the push server pushed nothing to anyone from then on."""
    message, _nid = note(1)

    class FlakyPubSub:
        def __init__(self) -> None:
            self.listens = 0

        async def listen(self):  # a first read that fails, then a message
            self.listens += 1
            if self.listens == 1:
                raise ValueError("a reply the client could not parse")
            yield {"type": "message", "channel": inbox_channel("u").encode(), "data": message}
            await asyncio.Event().wait()

    class FakeRedis:
        def pubsub(self) -> FlakyPubSub:
            return FlakyPubSub()

    hub = Hub(FakeRedis(), ignore_marks)  # type: ignore[arg-type]
    socket = FakeSocket()
    client = Client(socket, "u", queue_limit=5)
    hub.clients = {"u": {client}}
    pump = asyncio.create_task(client.pump(hub.delivered))
    reader = asyncio.create_task(hub._read())
    try:
        await drain(socket, 1)
        assert socket.sent[0]["notification"]["notification_id"] == "n1"
        assert hub.pubsub.listens == 2  # type: ignore[attr-defined]
    finally:
        reader.cancel()
        pump.cancel()
