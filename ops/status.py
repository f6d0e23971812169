"""Where each dataflow is in the log: committed position (from its recovery snapshots),
log end, lag in events and seconds, events/s, and dead letters."""

from __future__ import annotations

import pickle
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from dataflows import dead_letters


@dataclass(frozen=True)
class PartitionStatus:
    dataflow: str
    topic: str
    partition: int
    committed: int | None  # next offset the dataflow will read; None: never snapshotted
    end: int
    lag_seconds: float | None
    events_per_second: float | None = None

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


def committed_offsets(recovery: Path, dataflow: str) -> dict[tuple[str, int], int]:
    """The Kafka source's offsets in the newest snapshot of each partition, read from the
    recovery store (the source snapshots `"{partition}-{topic}"` -> next offset)."""
    found: dict[tuple[str, int], tuple[int, int]] = {}
    for db in sorted(recovery.glob("part-*.sqlite3")):
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT state_key, snap_epoch, ser_change FROM snaps WHERE step_id = ?",
                (f"{dataflow}.kafka_in",),
            ).fetchall()
        except sqlite3.Error:
            continue
        finally:
            conn.close()
        for key, epoch, blob in rows:
            if blob is None:
                continue
            part, _, topic = str(key).partition("-")
            offset = pickle.loads(blob)  # noqa: S301 - our own recovery store
            held = found.get((topic, int(part)))
            if isinstance(offset, int) and (held is None or epoch > held[0]):
                found[(topic, int(part))] = (epoch, offset)
    return {k: v[1] for k, v in found.items()}


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "agora-status", "enable.auto.commit": False}
    )


def partition_status(
    bootstrap: str, recovery: Path, dataflow: str, topics: tuple[str, ...]
) -> list[PartitionStatus]:
    committed = committed_offsets(recovery, dataflow)
    consumer = _consumer(bootstrap)
    out: list[PartitionStatus] = []
    try:
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            for part in sorted(meta.partitions):
                _low, end = consumer.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
                position = committed.get((topic, part))
                lag_s = None
                if position is not None and position < end:
                    lag_s = _age_of(consumer, topic, part, position)
                elif position is not None:
                    lag_s = 0.0
                out.append(PartitionStatus(dataflow, topic, part, position, end, lag_s))
    finally:
        consumer.close()
    return out


def _age_of(consumer: Consumer, topic: str, partition: int, offset: int) -> float | None:
    """Seconds since the oldest unread record was appended."""
    consumer.assign([TopicPartition(topic, partition, offset)])
    for _ in range(3):
        for msg in consumer.consume(1, 1.0):
            if msg.error() is None:
                stamp_ms = msg.timestamp()[1]
                return max(0.0, time.time() - stamp_ms / 1000)
    return None


def with_rates(
    first: list[PartitionStatus], second: list[PartitionStatus], seconds: float
) -> list[PartitionStatus]:
    before = {(p.topic, p.partition): p.committed for p in first}
    out = []
    for p in second:
        start = before.get((p.topic, p.partition))
        rate = None
        if start is not None and p.committed is not None and seconds > 0:
            rate = (p.committed - start) / seconds
        out.append(
            PartitionStatus(
                p.dataflow, p.topic, p.partition, p.committed, p.end, p.lag_seconds, rate
            )
        )
    return out


def dead_letter_counts(bootstrap: str) -> Counter[str]:
    return Counter(item.letter.dataflow for item in dead_letters.list_letters(bootstrap))


def format_rows(rows: list[PartitionStatus], letters: Counter[str]) -> str:
    lines = [
        f"{'dataflow':<9} {'topic':<12} {'part':>4} {'committed':>10} {'end':>10} "
        f"{'lag':>8} {'lag s':>8} {'ev/s':>8} {'dead letters':>12}"
    ]
    for r in rows:
        committed = "-" if r.committed is None else str(r.committed)
        lag_s = "-" if r.lag_seconds is None else f"{r.lag_seconds:.1f}"
        rate = "-" if r.events_per_second is None else f"{r.events_per_second:.1f}"
        lines.append(
            f"{r.dataflow:<9} {r.topic:<12} {r.partition:>4} {committed:>10} {r.end:>10} "
            f"{r.lag:>8} {lag_s:>8} {rate:>8} {letters.get(r.dataflow, 0):>12}"
        )
    lines.append(f"as of {datetime.now(UTC).isoformat(timespec='seconds')}")
    return "\n".join(lines)
