"""Kafka admin helpers: `python -m stores.kafka_admin ensure-topics` creates the catalog."""

from __future__ import annotations

import argparse
import sys

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.topics import BY_NAME, CATALOG
from stores.settings import get_settings


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["ensure-topics", "offsets"])
    parser.add_argument("--topic", choices=sorted(BY_NAME))
    args = parser.parse_args()
    bootstrap = get_settings().kafka_bootstrap
    if args.command == "ensure-topics":
        created = ensure_topics(bootstrap)
        print(f"topics created: {', '.join(created) if created else 'none (all present)'}")
    else:
        for name in [args.topic] if args.topic else sorted(BY_NAME):
            print(name, end_offsets(bootstrap, name))
    sys.exit(0)


if __name__ == "__main__":
    main()
