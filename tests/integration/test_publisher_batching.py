"""Concurrent publishes through a real broker: every one gets its own answer, and the
answers reach the event loop in batches (one wake-up per poll, not per message)."""

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


async def test_concurrent_publishes_are_all_answered_in_few_wake_ups(stack, settings):
    ensure_topic(settings.kafka_bootstrap)
    publisher = EventPublisher(settings.kafka_bootstrap)
    hand_offs: list[int] = []
    settle_all = publisher._settle_all

    def counted(answers: list[tuple[asyncio.Future[None], KafkaError | None]]) -> None:
        hand_offs.append(len(answers))
        settle_all(answers)

    publisher._settle_all = counted  # type: ignore[method-assign]
    try:
        count = 300
        await asyncio.gather(
            *(publisher.publish_raw(TOPIC, f"batching-{i}", b"{}") for i in range(count))
        )
        assert sum(hand_offs) == count  # every delivery answered, once
        assert len(hand_offs) < count / 5  # and not one loop wake-up per message
    finally:
        publisher.close()
