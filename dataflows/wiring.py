"""Production inputs and outputs of the dataflows: Kafka in, guarded store sinks, Kafka
out, dead letters to their topic. `dataflows/bootstrap.py` plugs these into each
dataflow; the unit tests plug in `bytewax.testing` instead."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from bytewax.connectors.kafka import KafkaError, KafkaSinkMessage, KafkaSource
from bytewax.inputs import Source, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaException, Message, Producer
from confluent_kafka import KafkaError as ConfluentError

from dataflows.common import SourceItem
from dataflows.guard import Backoff, BatchWriter, GuardedSink, LetterBox, describe
from dataflows.shared_consumer import ConsumerPool, Inbox
from dataflows.wakeups import SLOT, WakeupWheel, Woken
from schemas.envelope import encode, new_event
from schemas.events import DeadLetter
from schemas.topics import DEAD_LETTER
from stores.kafka import producer_config
from stores.settings import Settings

X = TypeVar("X")
log = logging.getLogger("dataflows")

# How long a caught-up partition waits before polling again: 10 ms, and once it has
# been quiet for QUIET_GRACE, twice as long after each empty poll, up to settings'
# dataflow_idle_pause_max_ms (100 ms by default). Each flow has 14 to 26 partitions
# (read through one consumer per worker), so a longer most spares an idle dataflow much
# of its polling; a partition taking a steady stream never leaves 10 ms, and only the first
# record after a quiet second can wait up to the most. A record resets the pause. The
# broker answers a fetch as soon as a record arrives (fetch.min.bytes 1), so a long
# fetch wait costs no freshness: it only spares the broker a fetch request per partition.
IDLE_PAUSE = timedelta(milliseconds=10)
QUIET_GRACE = timedelta(seconds=1)
# Under load a partition that returned records was polled again at once, so a busy
# flow ran a worker step, and each stateful step a pass over every key's timer
# (Bytewax 0.21 scans them all per activation), for every handful of records. With a
# batch interval a partition that returned records waits for the next multiple of the
# interval on the wall clock: all of a flow's partitions wake in the same step, and
# each step carries an interval's worth of records. It costs at most one interval of
# latency per hop.
DEFAULT_BATCH_INTERVAL = timedelta(0)
_TICK_SLACK = timedelta(microseconds=1)  # next_tick is strictly after: allow "on the tick"


def next_tick(now: datetime, interval: timedelta) -> datetime:
    """The first multiple of `interval` (counted from the Unix epoch) after `now`."""
    step = interval.total_seconds()
    return datetime.fromtimestamp((math.floor(now.timestamp() / step) + 1) * step, UTC)


FETCH_WAIT_MS = "500"
# A flow with a batch interval reads an interval's worth of records per step anyway, so
# its consumers need not fetch more often: each fetch waits for the interval, or for
# this many bytes, instead of returning with the first record. Under load that was one
# fetch request per record or two for each of the flow's partitions. Waiting no longer
# than the interval keeps a hop's added latency within about two intervals.
BATCHED_FETCH_MIN_BYTES = str(1 << 20)

# librdkafka errors about one message rather than the broker: a dead letter, not a wait.
RECORD_KAFKA_ERRORS = frozenset(
    {
        ConfluentError.MSG_SIZE_TOO_LARGE,
        ConfluentError.INVALID_MSG,
        ConfluentError.INVALID_MSG_SIZE,
        ConfluentError.RECORD_LIST_TOO_LARGE,
        ConfluentError.INVALID_RECORD,
    }
)


class RecordRejected(ValueError):
    """The broker refused one message for what it is (too large, invalid)."""


class TopicWriter:
    """Produces a batch and returns only once every message is acknowledged (acks=all).

    A batch with undelivered messages raises: a refusal of the message itself as
    RecordRejected (a record fault), anything else as KafkaException (transient), so
    the guarded sink waits and sends again; the topic's consumers are idempotent.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = Producer(producer_config(bootstrap, **{"delivery.timeout.ms": 30000}))

    def write(self, batch: list[KafkaSinkMessage[bytes, bytes]]) -> None:
        failures: list[ConfluentError] = []

        def on_delivery(err: ConfluentError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        for msg in batch:
            while True:
                try:
                    self.producer.produce(
                        msg.topic or self.topic,
                        value=msg.value,
                        key=msg.key,
                        headers=list(msg.headers),
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    self.producer.poll(0.1)  # the local queue is full: let it drain
        remaining = self.producer.flush(60)
        if remaining:
            raise KafkaException(ConfluentError(ConfluentError._TIMED_OUT, "flush timed out"))
        if failures:
            if len(batch) == 1 and failures[0].code() in RECORD_KAFKA_ERRORS:
                raise RecordRejected(failures[0].str())
            raise KafkaException(failures[0])

    def close(self) -> None:
        self.producer.flush(10)


class KafkaLetterBox:
    """Dead letters onto their topic, keyed by source topic; durable when publish returns."""

    def __init__(self, bootstrap: str) -> None:
        self.writer = TopicWriter(bootstrap, DEAD_LETTER.name)

    def publish(self, letters: list[DeadLetter]) -> None:
        self.writer.write([letter_message(d) for d in letters])


def letter_message(letter: DeadLetter) -> KafkaSinkMessage[bytes, bytes]:
    envelope = new_event(letter, key=letter.source_topic or letter.dataflow)
    return KafkaSinkMessage(key=envelope.key.encode(), value=encode(envelope))


class _LetterPartition(StatelessSinkPartition[DeadLetter]):
    def __init__(self, box: LetterBox, backoff: Backoff) -> None:
        self.box = box
        self.backoff = backoff

    def write_batch(self, items: list[DeadLetter]) -> None:
        attempt = 0
        while True:
            try:
                self.box.publish(items)
                for d in items:
                    log.warning(
                        "dead letter from %s at %s/%d/%d: %s",
                        d.dataflow,
                        d.source_topic,
                        d.partition,
                        d.offset,
                        d.reason[:300],
                    )
                return
            except Exception as exc:
                delay = self.backoff.delay(attempt)
                log.warning("dead letters not yet published (%s), retrying", describe(exc))
                time.sleep(delay)
                attempt += 1


class LetterSink(DynamicSink[DeadLetter]):
    """The dataflow's own dead letters (decode, checks, step logic)."""

    def __init__(self, open_box: Callable[[], LetterBox]) -> None:
        self.open_box = open_box

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LetterPartition:
        return _LetterPartition(self.open_box(), Backoff())


class PositionedPartition(StatefulSourcePartition[SourceItem, int | None]):
    """Snapshots the offset after the last record actually read.

    Bytewax's Kafka partition advances its snapshot past whatever `consume` returned,
    error events included: a broker outage (an error with offset -1001) would leave
    -1000 in the snapshot, which Kafka reads as "the committed offset" and, with none
    committed, as "the latest": a resume after an outage would skip records. This keeps
    the position of real records only.
    """

    def __init__(
        self,
        inner: Any,
        start: int | None,
        idle_pause_max: timedelta = IDLE_PAUSE,
        batch_interval: timedelta = DEFAULT_BATCH_INTERVAL,
        wheel: WakeupWheel | None = None,
    ) -> None:
        self.inner = inner
        self.wheel = wheel  # its due keys go out with this partition's records
        self.position = start
        self.idle_until: datetime | None = None
        self.idle_pause = IDLE_PAUSE
        self.idle_pause_max = max(idle_pause_max, IDLE_PAUSE)
        self.batch_interval = batch_interval
        self.quiet_since: datetime | None = None

    def next_batch(self) -> list[SourceItem]:
        batch = self.inner.next_batch()
        # An empty poll means the partition is caught up: ask again a little later
        # instead of at once, so an idle dataflow does not spin on its consumers.
        if batch:
            self.idle_pause, self.quiet_since = IDLE_PAUSE, None
            self.idle_until = (
                next_tick(datetime.now(UTC), self.batch_interval) if self.batch_interval else None
            )
        else:
            now = datetime.now(UTC)
            if self.quiet_since is None:
                self.quiet_since = now
            self.idle_until = now + self.idle_pause
            if self.batch_interval:  # the first tick at least a pause away: stay on ticks
                self.idle_until = next_tick(self.idle_until - _TICK_SLACK, self.batch_interval)
            if now - self.quiet_since >= QUIET_GRACE:  # quiet for a while: poll less
                self.idle_pause = min(self.idle_pause * 2, self.idle_pause_max)
        for item in batch:
            offset = getattr(item, "offset", None)
            if not isinstance(item, KafkaError) and isinstance(offset, int) and offset >= 0:
                self.position = offset + 1
        if self.wheel is None:
            return list(batch)
        return [*batch, *(Woken(key) for key in self.wheel.due())]

    def next_awake(self) -> datetime | None:
        if self.wheel is None or self.idle_until is None:
            return self.idle_until
        due = self.wheel.next_due()
        return self.idle_until if due is None else min(self.idle_until, due)

    def snapshot(self) -> int | None:
        return self.position

    def close(self) -> None:
        self.inner.close()


class PositionedKafkaSource(KafkaSource):
    """The Kafka source with positions that survive broker errors (see above); `starts`
    gives a partition (`"{partition}-{topic}"`) without a snapshot its first offset,
    which a backfill from a time or an offset needs."""

    def __init__(
        self,
        starts: dict[str, int] | None,
        *args: Any,
        idle_pause_max: timedelta = IDLE_PAUSE,
        batch_interval: timedelta = DEFAULT_BATCH_INTERVAL,
        wheel: WakeupWheel | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.starts = starts or {}
        self.idle_pause_max = idle_pause_max
        self.batch_interval = batch_interval
        self.wheel = wheel

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> Any:
        start = resume_state if resume_state is not None else self.starts.get(for_part)
        if start is not None and start < 0 and start not in (OFFSET_BEGINNING, OFFSET_END):
            start = None  # a position an older build recorded after an error: not a record
        idx, topic = for_part.split("-", 1)
        if topic not in self._topics:
            raise ValueError(f"cannot resume partition {for_part!r}: not one of {self._topics}")
        offset = start if start is not None else self._starting_offset
        inbox = self._pool().for_this_worker().join(topic, int(idx), offset)
        return PositionedPartition(
            InboxPartition(inbox),
            start if start is not None else OFFSET_BEGINNING,
            self.idle_pause_max,
            self.batch_interval,
            self.wheel,
        )

    def _pool(self) -> ConsumerPool:
        """The flow's consumers, one per worker (see `dataflows.shared_consumer`); made on
        first use, so the source itself stays a plain, picklable description."""
        with _POOLS_LOCK:
            pool: ConsumerPool | None = self.__dict__.get("_consumers")
            if pool is None:
                config = {
                    # Positions live in the recovery store, not in a consumer group.
                    "group.id": "BYTEWAX_IGNORED",
                    "enable.auto.commit": "false",
                    "bootstrap.servers": ",".join(self._brokers),
                    "enable.partition.eof": str(not self._tail),
                    **self._add_config,
                }
                pool = self.__dict__["_consumers"] = ConsumerPool(config, self._batch_size)
            return pool


_POOLS_LOCK = threading.Lock()


class InboxPartition:
    """A partition's reads through its worker's shared consumer, ending (when the source
    does not tail) once the partition's end has been handed over."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.done = False

    def next_batch(self) -> list[SourceItem]:
        if self.done:
            raise StopIteration()
        items = self.inbox.take()
        self.done = self.inbox.eof
        return items

    def close(self) -> None:
        self.inbox.close()


def fetch_config(batch_interval_ms: int) -> dict[str, str]:
    """Consumer settings for a flow: with a batch interval a fetch waits out the interval
    (see BATCHED_FETCH_MIN_BYTES); without one it returns with the first record."""
    if batch_interval_ms <= 0:
        return {"fetch.wait.max.ms": FETCH_WAIT_MS}
    return {
        "fetch.wait.max.ms": str(batch_interval_ms),
        "fetch.min.bytes": BATCHED_FETCH_MIN_BYTES,
    }


@dataclass(frozen=True)
class Wiring:
    """Builds the production sources and sinks of one dataflow."""

    settings: Settings
    dataflow: str
    tail: bool = True
    starts: dict[str, int] | None = None  # backfill: first offset per partition
    replay: bool = False  # a replay from offset 0 (search builds into new indexes)

    def source(
        self,
        topics: list[str],
        batch_interval_ms: int | None = None,
        wheel: WakeupWheel | None = None,
    ) -> Source[SourceItem]:
        """`batch_interval_ms`: the flow's own interval (see `next_tick`), at least the
        settings' `dataflow_batch_interval_ms`; `wheel`: whose due keys to hand out."""
        interval = max(batch_interval_ms or 0, self.settings.dataflow_batch_interval_ms, 0)
        options: dict[str, Any] = {
            "tail": self.tail,
            "add_config": fetch_config(interval),
            "raise_on_errors": False,
        }
        brokers = [self.settings.kafka_bootstrap]
        pause = timedelta(milliseconds=self.settings.dataflow_idle_pause_max_ms)
        # Its partitions also hand out the wheel's due keys (`Woken`): a SourceItem.
        source = PositionedKafkaSource(
            self.starts,
            brokers,
            topics,
            idle_pause_max=pause,
            batch_interval=timedelta(milliseconds=interval),
            wheel=wheel,
            **options,
        )
        return cast(Source[SourceItem], source)

    def letter_box(self) -> LetterBox:
        return KafkaLetterBox(self.settings.kafka_bootstrap)

    def wheel(self, slot: float = SLOT) -> WakeupWheel | None:
        """Far-off wake-ups for a live run, each at most `slot` seconds late; a bounded
        run (a replay) keeps Bytewax timers, and on_eof flushes what they hold."""
        return WakeupWheel(slot=slot) if self.tail else None

    def dead_letters(self) -> LetterSink:
        return LetterSink(self.letter_box)

    def store(self, step_id: str, open_writer: Callable[[], BatchWriter[X]]) -> GuardedSink[X]:
        return GuardedSink(self.dataflow, step_id, open_writer, self.letter_box)

    def topic(self, step_id: str, topic: str) -> GuardedSink[KafkaSinkMessage[bytes, bytes]]:
        bootstrap = self.settings.kafka_bootstrap
        return GuardedSink(
            self.dataflow, step_id, lambda: TopicWriter(bootstrap, topic), self.letter_box
        )
