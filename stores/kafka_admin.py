"""Kafka admin adapter: creates the topic catalog and reads partition ends (the
operator command is `agora topics ensure`)."""

from __future__ import annotations

from datetime import datetime

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.topics import CATALOG


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def ensure_topics(bootstrap: str) -> list[str]:
    client = admin(bootstrap)
    existing = set(client.list_topics(timeout=10).topics)
    missing = [
        # The log is the source of truth: replay needs every event, so keep them forever.
        NewTopic(
            t.name,
            num_partitions=t.partitions,
            replication_factor=1,
            config={"retention.ms": "-1", "min.insync.replicas": "1"},
        )
        for t in CATALOG
        if t.name not in existing
    ]
    if missing:
        for _name, future in client.create_topics(missing).items():
            try:
                future.result()
            except Exception as exc:  # already created by a concurrent caller
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
    return [t.topic for t in missing]


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """High watermark of every partition of `topic`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "agora-admin"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def offsets_for_time(bootstrap: str, topics: tuple[str, ...], since: datetime) -> dict[str, int]:
    """First offset at or after `since` in each partition (`"{partition}-{topic}"`)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "agora-admin", "enable.auto.commit": False}
    )
    try:
        wanted = []
        for topic in topics:
            for part in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                wanted.append(TopicPartition(topic, part, int(since.timestamp() * 1000)))
        found = consumer.offsets_for_times(wanted, timeout=10)
        starts: dict[str, int] = {}
        for tp in found:
            offset = tp.offset
            if offset < 0:  # nothing that late: start at the end
                offset = consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=10
                )[1]
            starts[f"{tp.partition}-{tp.topic}"] = offset
        return starts
    finally:
        consumer.close()


def partition_starts(bootstrap: str, topics: tuple[str, ...], offset: int) -> dict[str, int]:
    """The same first offset in every partition (`"{partition}-{topic}"`)."""
    return {f"{p}-{t}": offset for t in topics for p in end_offsets(bootstrap, t)}
