"""Concurrent publishes through a real broker: every one gets its own answer, the
event loop's polls serve them in batches (not one poll per message), and the polling
stops once nothing is in flight."""

from __future__ import annotations

import asyncio

from confluent_kafka import KafkaError
from confluent_kafka.admin import NewTopic

from stores.kafka import EventPublisher
from stores.kafka_admin import admin

TOPIC = "test.publisher-batching"  # read by no dataflow


def ensure_topic(bootstrap: str) -> None:
    client = admin(bootstrap)
    if TOPIC not in client.list_topics(timeout=10).topics:
        for future in client.create_topics([NewTopic(TOPIC, 1, 1)]).values():
            future.result(timeout=30)


async def test_concurrent_publishes_are_all_answered_in_few_polls(stack, settings):
    ensure_topic(settings.kafka_bootstrap)
    publisher = EventPublisher(settings.kafka_bootstrap)
    polls: list[int] = []
    answered_in: list[int] = []  # for each answer, the poll that served it
    poll, settle = publisher._poll, publisher._settle

    def counted(loop: asyncio.AbstractEventLoop) -> None:
        polls.append(1)
        poll(loop)

    def settled(done: asyncio.Future[None], err: KafkaError | None) -> None:
        answered_in.append(len(polls))
        settle(done, err)

    publisher._poll = counted  # type: ignore[method-assign]
    publisher._settle = settled  # type: ignore[method-assign]
    try:
        count = 300
        await asyncio.gather(
            *(publisher.publish_raw(TOPIC, f"batching-{i}", b"{}") for i in range(count))
        )
        assert len(answered_in) == count  # every delivery answered, once
        assert len(set(answered_in)) < count / 5  # many answers per poll
        # The poll that served the last answer saw nothing left in flight and stopped
        # polling before any caller resumed.
        assert not publisher.polling
        polled = len(polls)
        await asyncio.sleep(0.05)  # a window in which an idle loop must not poll
        assert len(polls) == polled
    finally:
        publisher.close()
