"""Reads a topic of the log from its start to its current end, for operators and
analysts (dead-letter listings, notebooks): never the dataflows' path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from schemas.envelope import InvalidEvent, decode
from schemas.events import Payload


def read_topic(bootstrap: str, topic: str) -> Iterator[Message]:
    """Every record of `topic` from the start to its end as of the call."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "agora-reader", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        if not ends:
            return
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        while ends:
            for msg in consumer.consume(500, 1.0):
                if msg.error() is not None:
                    continue
                part, offset = msg.partition(), msg.offset()
                if part in ends and offset is not None and offset < ends[part]:
                    yield msg
                    if offset + 1 >= ends[part]:
                        del ends[part]
    finally:
        consumer.close()


def events(bootstrap: str, topic: str) -> Iterator[tuple[datetime, Payload]]:
    """The valid events of a topic with the time each was appended."""
    for msg in read_topic(bootstrap, topic):
        try:
            envelope, payload = decode(msg.value())
        except InvalidEvent:
            continue
        yield envelope.time.astimezone(UTC), payload
