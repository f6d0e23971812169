"""The Kafka source snapshots the position after the last record it read, never a
position derived from a broker error (which Kafka would read as "latest")."""

from __future__ import annotations

from typing import Any

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage

from dataflows.wiring import PositionedPartition


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
