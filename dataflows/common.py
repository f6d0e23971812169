"""Pieces every dataflow shares: records from the log as decoded, traced events, and
a progress counter the replay command reads."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from prometheus_client import Counter

from dataflows.checks import check_ids
from dataflows.guard import Guard, Origin, Traced, letter
from dataflows.wakeups import Woken
from observability import tracing
from observability.metrics import RECORDS
from schemas.envelope import Envelope, decode
from schemas.events import DeadLetter, Payload

log = logging.getLogger("dataflows")

Message = KafkaSourceMessage[bytes | None, bytes | None]
# A Kafka record or error, or a key due for a wake-up (`dataflows.wakeups`).
SourceItem = Message | KafkaError[bytes | None, bytes | None] | Woken


class Progress:
    """Records read by this process; the replay command shows it against the log's size."""

    count = 0


PROGRESS = Progress()


@dataclass(frozen=True)
class Event:
    envelope: Envelope
    payload: Payload


@functools.cache
def _records_counter(dataflow: str, topic: str) -> Counter:
    """The labelled child, looked up once: `labels()` takes a lock and a dict lookup,
    and this runs for every record."""
    return RECORDS.labels(dataflow, topic)


def origin_of(msg: Message) -> Origin:
    return Origin(
        msg.topic or "",
        msg.partition or 0,
        msg.offset or 0,
        msg.value,
        tracing.traceparent_of(msg.headers),
    )


def as_record(dataflow: str, item: SourceItem) -> Traced[bytes | None] | DeadLetter | None:
    """A log record with its origin; an error about one record is its dead letter, an
    error about the broker (no record behind it) is logged and the source goes on."""
    if isinstance(item, Woken):
        return None  # not a record: `dataflows.wakeups.with_wakeups` takes it
    if isinstance(item, KafkaError):
        offset = item.msg.offset
        if offset is None or offset < 0:
            log.warning("%s: kafka: %s", dataflow, item.err.str())
            return None
        return letter(dataflow, "kafka_in", origin_of(item.msg), f"kafka: {item.err.str()}")
    PROGRESS.count += 1
    _records_counter(dataflow, item.topic or "").inc()
    return Traced(origin_of(item), item.value)


def decode_event(raw: bytes | None) -> Event:
    """The record's event; raises (and so dead-letters it) for bytes that do not decode,
    a schema violation, or ids that domain code rejects."""
    envelope, payload = decode(raw)
    check_ids(payload)
    return Event(envelope, payload)


def read(flow: Dataflow, source: Source[SourceItem]) -> Stream[SourceItem]:
    return op.input("kafka_in", flow, source)


def events(guard: Guard, flow: Dataflow, source: Source[SourceItem]) -> Stream[Traced[Event]]:
    """Decoded events of a source; whatever does not decode becomes a dead letter."""
    return events_of(guard, read(flow, source))


def events_of(guard: Guard, items: Stream[SourceItem]) -> Stream[Traced[Event]]:
    dataflow = guard.dataflow
    records: Stream[Traced[bytes | None]] = guard.split(
        "records", op.filter_map("records", items, lambda i: as_record(dataflow, i))
    )
    return guard.map("decode", records, decode_event)
