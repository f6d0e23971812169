"""The outbox relay: order per key, two relays at once, and a crash after publishing."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from confluent_kafka import Consumer, TopicPartition

from api.relay import relay_once
from domain.ids import new_id
from schemas.envelope import decode, new_event
from schemas.events import MembershipChanged
from schemas.topics import COMMUNITIES
from stores import outbox
from stores.kafka import EventPublisher
from stores.kafka_admin import end_offsets
from stores.outbox import RELAY_LOCK

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def enqueue(conn: asyncpg.Connection, key: str, count: int) -> list[str]:
    ids = []
    for i in range(count):
        event = new_event(
            MembershipChanged(community_id=key, user_id=f"u{i}", joined=True, member_count=i),
            key=key,
        )
        await outbox.append(conn, event)
        ids.append(event.event_id)
    return ids


def published(bootstrap: str, key: str, start: dict[int, int]) -> list[str]:
    ends = end_offsets(bootstrap, COMMUNITIES.name)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "outbox-test"})
    consumer.assign([TopicPartition(COMMUNITIES.name, p, start.get(p, 0)) for p in ends])
    remaining = {p for p, end in ends.items() if end > start.get(p, 0)}
    seen = []
    try:
        while remaining:
            for msg in consumer.consume(500, timeout=5):
                partition, offset = msg.partition() or 0, msg.offset() or 0
                if offset >= ends[partition] - 1:
                    remaining.discard(partition)
                envelope, _ = decode(msg.value())
                if envelope.key == key:
                    seen.append(envelope.event_id)
    finally:
        consumer.close()
    return seen


async def drain(conn: asyncpg.Connection, publisher: EventPublisher) -> None:
    while await relay_once(conn, publisher, batch=7):
        pass


async def test_two_relays_keep_per_key_order(stack, settings):
    start = end_offsets(settings.kafka_bootstrap, COMMUNITIES.name)
    key = new_id()
    dsn = settings.dsn(settings.identity_db)
    writer, a, b = [await asyncpg.connect(dsn) for _ in range(3)]
    publisher = EventPublisher(settings.kafka_bootstrap)
    try:
        expected = await enqueue(writer, key, 60)
        await asyncio.gather(drain(a, publisher), drain(b, publisher))
        assert published(settings.kafka_bootstrap, key, start) == expected
        unsent = await writer.fetchval(
            "SELECT count(*) FROM outbox WHERE key = $1 AND sent_at IS NULL", key
        )
        assert unsent == 0
    finally:
        publisher.close()
        for conn in (writer, a, b):
            await conn.close()


class CrashAfterPublish(EventPublisher):
    """Publishes for real, then fails as a process would die before marking rows sent."""

    async def publish_raw(self, topic: str, key: str, value: bytes) -> None:
        await super().publish_raw(topic, key, value)
        raise ConnectionError("relay died after publishing")


async def test_crash_between_publish_and_mark_republishes(stack, settings):
    start = end_offsets(settings.kafka_bootstrap, COMMUNITIES.name)
    key = new_id()
    conn = await asyncpg.connect(settings.dsn(settings.identity_db))
    crashing = CrashAfterPublish(settings.kafka_bootstrap)
    healthy = EventPublisher(settings.kafka_bootstrap)
    # Hold the relays' lock for the whole test (it is re-entrant for this session), so a
    # relay of a running platform cannot take the rows between the crash and the checks.
    await conn.execute("SELECT pg_advisory_lock($1)", RELAY_LOCK)
    try:
        expected = await enqueue(conn, key, 5)
        with pytest.raises(ConnectionError):
            await relay_once(conn, crashing)
        unsent = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE key = $1 AND sent_at IS NULL", key
        )
        assert unsent == 5  # nothing was marked: the rows go out again
        await drain(conn, healthy)
        seen = published(settings.kafka_bootstrap, key, start)
        assert seen == expected + expected  # at least once, in order; consumers dedupe by id
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK)
        crashing.close()
        healthy.close()
        await conn.close()
