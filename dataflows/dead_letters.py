"""Operate on dead letters: list them, and re-publish chosen records after a fix.

A dead letter names the record it stands for by (source topic, partition, offset).
A dataflow resumed from a snapshot may dead-letter the same record again, so the
listing keeps one entry per (dataflow, topic, partition, offset), with how often it
was recorded. Re-publishing copies the original record (key, value, headers) from
its source topic to the end of that topic, where every dataflow reading it sees it
again; their sinks are idempotent, so a dataflow that had already used it is not
changed by the copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from schemas.envelope import InvalidEvent, decode
from schemas.events import DeadLetter
from schemas.topics import BY_NAME, DEAD_LETTER
from stores.kafka import producer_config
from stores.log_reader import read_topic


@dataclass(frozen=True)
class SourceRef:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


REF = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+):(?P<partition>\d+):(?P<offset>\d+)$")


def parse_ref(text: str) -> SourceRef:
    """`topic:partition:offset`, as the listing prints it."""
    match = REF.match(text.strip())
    if match is None or match["topic"] not in BY_NAME:
        raise ValueError(f"not a record reference (topic:partition:offset): {text!r}")
    return SourceRef(match["topic"], int(match["partition"]), int(match["offset"]))


@dataclass
class Listed:
    letter: DeadLetter
    recorded: int  # how many times it was dead-lettered (resumes may repeat one)
    first_seen_ms: int

    @property
    def ref(self) -> SourceRef:
        return SourceRef(self.letter.source_topic, self.letter.partition, self.letter.offset)


def list_letters(bootstrap: str, dataflow: str | None = None) -> list[Listed]:
    """Dead letters, one per (dataflow, source record), oldest first."""
    seen: dict[tuple[str, str, int, int], Listed] = {}
    for msg in read_topic(bootstrap, DEAD_LETTER.name):
        try:
            _envelope, payload = decode(msg.value())
        except InvalidEvent:
            continue
        if not isinstance(payload, DeadLetter):
            continue
        if dataflow is not None and payload.dataflow != dataflow:
            continue
        key = (payload.dataflow, payload.source_topic, payload.partition, payload.offset)
        held = seen.get(key)
        if held is None:
            seen[key] = Listed(payload, 1, msg.timestamp()[1])
        else:
            held.recorded += 1
    return list(seen.values())


def republish(bootstrap: str, refs: list[SourceRef]) -> list[SourceRef]:
    """Copy each referenced record to the end of its topic; returns those copied."""
    wanted = set(refs)
    copied: list[SourceRef] = []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "agora-dead-letters",
            "enable.auto.commit": False,
        }
    )
    producer = Producer(producer_config(bootstrap))
    try:
        for ref in sorted(wanted, key=lambda r: (r.topic, r.partition, r.offset)):
            consumer.assign([TopicPartition(ref.topic, ref.partition, ref.offset)])
            msg = _one(consumer)
            if msg is None or msg.offset() != ref.offset:
                continue
            producer.produce(ref.topic, value=msg.value(), key=msg.key(), headers=msg.headers())
            copied.append(ref)
        if producer.flush(30):
            raise RuntimeError("the broker did not acknowledge every re-published record")
    finally:
        consumer.close()
    return copied


def _one(consumer: Consumer) -> Message | None:
    for _ in range(10):
        msgs = consumer.consume(1, 1.0)
        for msg in msgs:
            if msg.error() is None:
                return msg
    return None
