"""The dataflows' Kafka source on a real broker: one consumer per worker reads every
partition of every topic it is given, each record once, each partition from its own
position, and a source that does not tail ends at the end of the log."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, cluster_main, run_main
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from dataflows import shared_consumer
from dataflows.common import SourceItem
from dataflows.wiring import PositionedKafkaSource
from domain.ids import new_id
from stores.kafka_admin import admin
from tests.processes import wait_for

# What a Kafka source reads (a flow's SourceItem also admits the wheel's due keys).
Read = KafkaSourceMessage[bytes | None, bytes | None] | KafkaError[bytes | None, bytes | None]

PER_PARTITION = 5


def make_topics(bootstrap: str, partitions: dict[str, int]) -> None:
    client = admin(bootstrap)  # held until the topics exist
    futures = client.create_topics([NewTopic(t, n, 1) for t, n in partitions.items()])
    for future in futures.values():
        future.result(timeout=30)


def fill(bootstrap: str, partitions: dict[str, int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for topic, count in partitions.items():
        for part in range(count):
            for n in range(PER_PARTITION):
                producer.produce(topic, value=f"{topic}/{part}/{n}".encode(), partition=part)
    assert producer.flush(30) == 0


@pytest.fixture
def topics(stack: None, settings: Any) -> dict[str, int]:
    suffix = new_id()[-8:].lower()
    partitions = {f"test.shared-a-{suffix}": 3, f"test.shared-b-{suffix}": 2}
    make_topics(settings.kafka_bootstrap, partitions)
    fill(settings.kafka_bootstrap, partitions)
    return partitions


class CountedConsumer(Consumer):
    made: list[CountedConsumer] = []

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        CountedConsumer.made.append(self)


def read_all(source: PositionedKafkaSource) -> list[KafkaSourceMessage[bytes, bytes]]:
    flow = Dataflow("shared_consumer_test")
    out: list[Read] = []
    op.output("out", op.input("in", flow, source), TestingSink(out))
    run_main(flow)
    assert all(isinstance(i, KafkaSourceMessage) for i in out), out
    return out  # type: ignore[return-value]


def test_one_consumer_reads_every_partition_once_and_the_source_ends(
    topics: dict[str, int], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_consumer, "Consumer", CountedConsumer)
    CountedConsumer.made.clear()
    source = PositionedKafkaSource(None, [settings.kafka_bootstrap], list(topics), tail=False)
    items = read_all(source)
    values = Counter(i.value for i in items)
    expected = {
        f"{t}/{p}/{n}".encode()
        for t, count in topics.items()
        for p in range(count)
        for n in range(PER_PARTITION)
    }
    assert set(values) == expected and set(values.values()) == {1}
    assert len(CountedConsumer.made) == 1  # five partitions, one worker: one consumer
    for item in items:  # each record says where it came from, as Bytewax's own source did
        topic, part, n = item.value.decode().split("/")
        assert (item.topic, item.partition, item.offset) == (topic, int(part), int(n))


def test_each_partition_starts_from_its_own_position(topics: dict[str, int], settings: Any) -> None:
    first, second = list(topics)
    starts = {f"1-{first}": 3, f"0-{second}": PER_PARTITION}  # the second: already read
    source = PositionedKafkaSource(starts, [settings.kafka_bootstrap], list(topics), tail=False)
    read = Counter((i.topic, i.partition) for i in read_all(source))
    assert read[(first, 0)] == PER_PARTITION
    assert read[(first, 1)] == PER_PARTITION - 3
    assert read[(second, 0)] == 0
    assert read[(second, 1)] == PER_PARTITION


def test_partitions_hand_over_what_another_partitions_poll_fetched(
    topics: dict[str, int], settings: Any
) -> None:
    """Polling one partition fetches for all: each keeps its own records and position,
    whichever asked first."""
    topic = next(iter(topics))
    source = PositionedKafkaSource(None, [settings.kafka_bootstrap], [topic], tail=True)
    parts = [source.build_part("in", f"{p}-{topic}", None) for p in range(3)]
    got: dict[int, list[SourceItem]] = {p: [] for p in range(3)}

    def everything_read() -> bool:
        for p, part in enumerate(parts):
            got[p].extend(part.next_batch())
        return all(len(items) == PER_PARTITION for items in got.values())

    wait_for(everything_read, timeout=30, interval=0.05, what="every partition's records")
    for p, part in enumerate(parts):
        assert {i.partition for i in got[p]} == {p}  # type: ignore[union-attr]
        assert part.snapshot() == PER_PARTITION
    pool = source._pool()
    assert set(pool.by_thread) == {threading.get_ident()}
    for part in parts:
        part.close()
    assert pool.by_thread == {}  # the last partition closed the consumer


def test_a_resumed_partition_rebuilds_on_a_fresh_consumer(
    topics: dict[str, int], settings: Any
) -> None:
    topic = next(iter(topics))
    source = PositionedKafkaSource(None, [settings.kafka_bootstrap], [topic], tail=True)
    part = source.build_part("in", f"2-{topic}", 4)

    def last_record() -> list[SourceItem]:
        return part.next_batch()

    items = wait_for(last_record, timeout=30, interval=0.05, what="the last record")
    assert [i.offset for i in items] == [4]  # type: ignore[union-attr]
    part.close()
    with pytest.raises(ValueError, match="not one of"):
        source.build_part("in", "0-some-other-topic", None)


def test_two_workers_in_one_process_each_read_through_their_own_consumer(
    topics: dict[str, int], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers of one process are threads: each builds and polls its own partitions,
    so each gets a consumer of its own and no consumer is polled from two threads."""
    monkeypatch.setattr(shared_consumer, "Consumer", CountedConsumer)
    CountedConsumer.made.clear()
    polled_from: dict[int, set[int]] = {}
    pump = shared_consumer.SharedConsumer.pump

    def recorded(self: shared_consumer.SharedConsumer, caller: shared_consumer.Inbox) -> None:
        polled_from.setdefault(id(self), set()).add(threading.get_ident())
        pump(self, caller)

    monkeypatch.setattr(shared_consumer.SharedConsumer, "pump", recorded)
    source = PositionedKafkaSource(None, [settings.kafka_bootstrap], list(topics), tail=False)
    flow = Dataflow("shared_consumer_two_workers")
    out: list[Read] = []
    op.output("out", op.input("in", flow, source), TestingSink(out))
    cluster_main(flow, [], 0, worker_count_per_proc=2)
    assert len(out) == sum(topics.values()) * PER_PARTITION
    assert len(CountedConsumer.made) == 2
    assert len(polled_from) == 2 and all(len(t) == 1 for t in polled_from.values())
    assert len(set.union(*polled_from.values())) == 2
