"""The Kafka source snapshots the position after the last record it read, never a
position derived from a broker error (which Kafka would read as "latest")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage

from dataflows.wiring import PositionedPartition, next_tick


class Inner:
    def __init__(self, batches: list[list[Any]]) -> None:
        self.batches = batches
        self.closed = False

    def next_batch(self) -> list[Any]:
        return self.batches.pop(0)

    def next_awake(self) -> None:
        return None

    def snapshot(self) -> int:
        return -1000  # what Bytewax's own partition holds after an error event

    def close(self) -> None:
        self.closed = True


class BrokerDown:
    def str(self) -> str:
        return "all brokers down"


def message(offset: int) -> KafkaSourceMessage[bytes, bytes]:
    return KafkaSourceMessage(key=b"k", value=b"v", topic="votes", partition=0, offset=offset)


def error() -> KafkaError[bytes, bytes]:
    return KafkaError(BrokerDown(), KafkaSourceMessage(key=None, value=None, offset=-1001))  # type: ignore[arg-type]


def test_positions_follow_records_only() -> None:
    inner = Inner([[message(7), message(8)], [error()], [], [message(9)]])
    part = PositionedPartition(inner, 7)
    assert part.snapshot() == 7
    part.next_batch()
    assert part.snapshot() == 9
    part.next_batch()  # the broker went away: the position stays
    assert part.snapshot() == 9
    part.next_batch()
    part.next_batch()
    assert part.snapshot() == 10
    part.close()
    assert inner.closed


def test_a_fresh_partition_starts_from_the_beginning() -> None:
    part = PositionedPartition(Inner([[error()]]), -2)
    part.next_batch()
    assert part.snapshot() == -2


def pause_after(part: PositionedPartition) -> timedelta:
    assert part.idle_until is not None
    return part.idle_until - datetime.now(UTC)


def test_a_quiet_partition_waits_longer_up_to_the_most_and_a_record_resets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("dataflows.wiring.QUIET_GRACE", timedelta(0))
    part = PositionedPartition(
        Inner([[], [], [], [], [], [message(1)], []]), 0, timedelta(milliseconds=80)
    )
    waits = []
    for _ in range(5):
        part.next_batch()
        waits.append(pause_after(part))
    for wait, expected in zip(waits, (10, 20, 40, 80, 80), strict=True):
        assert timedelta(milliseconds=expected - 5) < wait <= timedelta(milliseconds=expected)
    part.next_batch()  # a record: polled again at once
    assert part.idle_until is None
    part.next_batch()  # quiet again: the shortest pause first
    assert pause_after(part) <= timedelta(milliseconds=10)


def test_the_default_most_keeps_the_fixed_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dataflows.wiring.QUIET_GRACE", timedelta(0))  # doubling allowed
    part = PositionedPartition(Inner([[], [], []]), 0)
    for _ in range(3):
        part.next_batch()
        assert pause_after(part) <= timedelta(milliseconds=10)


def test_a_partition_quiet_for_less_than_the_grace_keeps_the_shortest_pause() -> None:
    """A steady stream has short gaps: they must not cost it the longer pauses."""
    part = PositionedPartition(Inner([[]] * 6), 0, timedelta(milliseconds=80))
    for _ in range(6):
        part.next_batch()
        assert pause_after(part) <= timedelta(milliseconds=10)


def test_a_batch_interval_wakes_every_partition_on_the_same_tick() -> None:
    """With an interval, a partition that returned records waits for the next multiple
    of it on the wall clock, so all partitions poll in the same worker step."""
    interval = timedelta(milliseconds=250)
    parts = [
        PositionedPartition(Inner([[message(1)], []]), 0, batch_interval=interval) for _ in range(3)
    ]
    before = datetime.now(UTC)
    for part in parts:
        part.next_batch()
    after = datetime.now(UTC)
    ticks = {part.idle_until for part in parts}
    assert len(ticks) == 1 or len(ticks) == 2  # two only if a tick fell between the polls
    for tick in ticks:
        assert tick is not None
        assert tick.microsecond % 250_000 == 0
        assert before < tick <= after + interval
    parts[0].next_batch()  # empty: not before the next tick either
    assert parts[0].idle_until is not None
    assert parts[0].idle_until.microsecond % 250_000 == 0


def test_next_tick_is_the_next_multiple() -> None:
    at = datetime(2026, 1, 1, 0, 0, 0, 100_000, tzinfo=UTC)
    assert next_tick(at, timedelta(milliseconds=250)) == at.replace(microsecond=250_000)
    on = at.replace(microsecond=250_000)
    assert next_tick(on, timedelta(milliseconds=250)) == at.replace(microsecond=500_000)
