"""Recompute tallies from the votes topic itself: the reference the dataflow must match."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from domain.votes import Tally
from schemas.envelope import InvalidEvent, decode
from schemas.events import VoteCast
from schemas.topics import VOTES
from stores.kafka_admin import end_offsets


def recompute(bootstrap: str, targets: set[str]) -> dict[str, tuple[int, int]]:
    ends = end_offsets(bootstrap, VOTES.name)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "agora-recompute", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(VOTES.name, p, 0) for p in ends])
    remaining = {p for p, end in ends.items() if end > 0}
    tallies = {t: Tally() for t in targets}
    try:
        while remaining:
            for msg in consumer.consume(500, timeout=5):
                if msg.error():
                    continue
                partition, offset = msg.partition() or 0, msg.offset() or 0
                if offset >= ends[partition] - 1:
                    remaining.discard(partition)
                try:
                    _env, payload = decode(msg.value())
                except InvalidEvent:
                    continue
                if isinstance(payload, VoteCast) and payload.target_id in tallies:
                    tallies[payload.target_id].apply(
                        payload.user_id, payload.direction, payload.version
                    )
    finally:
        consumer.close()
    return {t: (v.upvotes, v.downvotes) for t, v in tallies.items()}
