"""Pieces every dataflow shares: the Kafka source with decoding, the dead-letter
stream, and a progress counter the replay command reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaError, KafkaSinkMessage, KafkaSourceMessage
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow, Stream

from schemas.envelope import Envelope, InvalidEvent, decode, encode, new_event
from schemas.events import DeadLetter, Payload
from schemas.topics import DEAD_LETTER
from stores.kafka import producer_config


class Progress:
    """Records read by this process; the replay command shows it against the log's size."""

    count = 0


PROGRESS = Progress()


@dataclass(frozen=True)
class Event:
    envelope: Envelope
    payload: Payload
    topic: str
    partition: int
    offset: int


def decode_message(
    dataflow: str, msg: KafkaSourceMessage[bytes | None, bytes | None]
) -> Event | DeadLetter:
    PROGRESS.count += 1
    try:
        envelope, payload = decode(msg.value)
    except InvalidEvent as exc:
        return dead_letter(dataflow, msg, str(exc))
    return Event(envelope, payload, msg.topic or "", msg.partition or 0, msg.offset or 0)


def dead_letter(
    dataflow: str, msg: KafkaSourceMessage[bytes | None, bytes | None], reason: str
) -> DeadLetter:
    raw = (msg.value or b"")[:10_000].decode("utf-8", errors="replace")
    return DeadLetter(
        source_topic=msg.topic or "",
        partition=msg.partition or 0,
        offset=msg.offset or 0,
        dataflow=dataflow,
        reason=reason,
        raw=raw,
    )


def source_error(dataflow: str, err: KafkaError[bytes | None, bytes | None]) -> DeadLetter:
    return dead_letter(dataflow, err.msg, f"kafka error: {err.err.str()}")


def to_dead_letter_message(letter: DeadLetter) -> KafkaSinkMessage[bytes, bytes]:
    envelope = new_event(letter, key=letter.source_topic)
    return KafkaSinkMessage(key=letter.source_topic.encode(), value=encode(envelope))


def is_event(item: Event | DeadLetter) -> bool:
    return isinstance(item, Event)


def kafka_events(
    flow: Dataflow, dataflow: str, brokers: str, topics: list[str], *, tail: bool = True
) -> Stream[Event]:
    """Decoded events of `topics`; anything undecodable goes to the dead-letter topic."""
    source = kop.input(
        "kafka_in",
        flow,
        brokers=[brokers],
        topics=topics,
        tail=tail,
        add_config={"fetch.wait.max.ms": "20"},
    )
    decoded = op.map("decode", source.oks, lambda m: decode_message(dataflow, m))
    split = op.branch("split_invalid", decoded, is_event)
    errors = op.map("source_errors", source.errs, lambda e: source_error(dataflow, e))
    letters = cast(Stream[DeadLetter], op.merge("dead_letters", split.falses, errors))
    kop.output(
        "dead_letter_out",
        op.map("dead_letter_msg", letters, to_dead_letter_message),
        brokers=[brokers],
        topic=DEAD_LETTER.name,
        add_config=_producer_overrides(brokers),
    )
    return cast(Stream[Event], split.trues)


def _producer_overrides(brokers: str) -> dict[str, Any]:
    config = producer_config(brokers)
    config.pop("bootstrap.servers")
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in config.items()}


def kafka_output(
    flow_stream: Stream[KafkaSinkMessage[bytes, bytes]], step_id: str, brokers: str, topic: str
) -> None:
    kop.output(
        step_id,
        flow_stream,
        brokers=[brokers],
        topic=topic,
        add_config=_producer_overrides(brokers),
    )
