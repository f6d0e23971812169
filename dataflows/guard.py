"""No single record can stop a pipeline.

Every record read from the log travels as a `Traced` value: the value plus the
`Origin` (topic, partition, offset) it came from. A `Guard` builds a dataflow's
steps so that whatever one record does (fails to decode, violates its schema,
carries an id the domain rejects, makes a step's logic raise, or is refused by a
store) becomes one `DeadLetter` naming the dataflow, the step, the reason and the
record's origin, and every other record keeps flowing.

Failures are told apart by what raised (`classify`):
- *transient*: the store or broker could not be reached or answered with a
  condition about itself (connection refused or lost, timeouts, "starting up",
  "shutting down", too many connections, serialization conflicts). The step waits
  with capped exponential backoff and tries the same batch again, forever: a
  server that is restarting never causes a dead letter. The process does not exit.
- *record*: a store refused the data itself (Postgres SQLSTATE classes 21, 22, 23,
  54 and datatype mismatches, CQL invalid requests, a Redis script error) or the
  platform's own code raised for the value (ValueError, TypeError, KeyError, ...).
  A sink that gets one for a batch splits the batch in halves and writes each again
  until the offending records stand alone; those are dead-lettered and the good
  ones of the batch are written (once more, harmlessly: every sink is idempotent).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Generic, Protocol, TypeVar, cast

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.outputs import DynamicSink, Sink, StatelessSinkPartition

from observability import tracing
from observability.metrics import DEAD_LETTERS, SINK_BATCHES, SINK_RECORDS, SINK_RETRIES
from schemas.events import DeadLetter, escape_controls

X = TypeVar("X")
Y = TypeVar("Y")
V = TypeVar("V")
W = TypeVar("W")
S = TypeVar("S")
V_contra = TypeVar("V_contra", contravariant=True)
W_co = TypeVar("W_co", covariant=True)
S_co = TypeVar("S_co", covariant=True)

log = logging.getLogger("dataflows.guard")

RAW_LIMIT = 10_000  # characters of a record kept in its dead letter
REASON_LIMIT = 2_000


@dataclass(frozen=True)
class Origin:
    """Where a record sits in the log; `raw` is its value, kept for the dead letter;
    `traceparent` the trace it belongs to, if its producer was tracing."""

    topic: str
    partition: int
    offset: int
    raw: bytes | None = None
    traceparent: bytes | None = None


CLOCK = Origin("", -1, -1)  # outputs a timer produced, not a record


@dataclass(frozen=True)
class Traced(Generic[X]):
    origin: Origin
    value: X


def letter(dataflow: str, step: str, origin: Origin, reason: str) -> DeadLetter:
    DEAD_LETTERS.labels(dataflow, step).inc()
    raw = (origin.raw or b"")[:RAW_LIMIT].decode("utf-8", errors="replace")
    return DeadLetter(
        source_topic=origin.topic,
        partition=origin.partition,
        offset=origin.offset,
        dataflow=dataflow,
        reason=escape_controls(f"{step}: {reason}"[:REASON_LIMIT]),
        raw=escape_controls(raw),
    )


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- telling a record's fault from a server's ---------------------------------------


class Fault(Enum):
    TRANSIENT = "transient"
    RECORD = "record"


# Postgres SQLSTATE classes that describe the data, not the server: cardinality,
# data exceptions (encoding, out of range), integrity constraints, program limits
# (an index row too large).
RECORD_SQLSTATE_CLASSES = ("21", "22", "23", "54")
RECORD_SQLSTATES = ("42804", "42P18", "42883")  # datatype mismatch, indeterminate, no function
# Errors of a store client that mean "the server, not the data": connection and
# timeout trouble (OSError covers refused and reset connections).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError)


def classify(exc: BaseException) -> Fault:
    """A record fault or a transient one (see the module docstring).

    Store clients are judged by what they say (SQLSTATE, error class); whatever
    else raises (the platform's own code, a library refusing a value) is about the
    record, so it cannot wedge the flow by being retried forever.
    """
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):  # asyncpg server errors carry their SQLSTATE
        if sqlstate[:2] in RECORD_SQLSTATE_CLASSES or sqlstate in RECORD_SQLSTATES:
            return Fault.RECORD
        return Fault.TRANSIENT
    if isinstance(exc, TRANSIENT_ERRORS):
        return Fault.TRANSIENT
    module = type(exc).__module__
    name = type(exc).__name__
    if module.startswith("cassandra"):
        return Fault.RECORD if name == "InvalidRequest" else Fault.TRANSIENT
    if module.startswith("redis"):
        # A script or command refusing a value; connection trouble is transient.
        return Fault.RECORD if name in ("ResponseError", "DataError") else Fault.TRANSIENT
    if module.startswith("asyncpg"):
        # Client-side: a value the driver cannot encode is the record's fault.
        return Fault.RECORD if name == "DataError" else Fault.TRANSIENT
    if module.startswith(("confluent_kafka", "cimpl")):
        return Fault.TRANSIENT
    return Fault.RECORD


@dataclass(frozen=True)
class Backoff:
    """Capped exponential waits between attempts after a transient failure."""

    first: float = 0.1
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap, self.first * (2 ** min(attempt, 16))))


# -- streams ---------------------------------------------------------------------------


class LetterBox(Protocol):
    """Where a sink puts the dead letters it finds; returns once they are durable."""

    def publish(self, letters: list[DeadLetter]) -> None: ...


class Guard:
    """Builds one dataflow's steps so that a record's failure becomes a dead letter.

    Steps made here put their failures into the guard; `finish` sends them all to the
    dead-letter sink. Sinks wrapped by `sink` dead-letter what a store refuses.
    """

    def __init__(self, dataflow: str) -> None:
        self.dataflow = dataflow
        self._letters: list[Stream[DeadLetter]] = []

    def add_letters(self, letters: Stream[DeadLetter]) -> None:
        self._letters.append(letters)

    def map(
        self, step_id: str, stream: Stream[Traced[X]], fn: Callable[[X], Y | None]
    ) -> Stream[Traced[Y]]:
        """`fn` per value; None drops the value, an exception dead-letters it."""
        return self.map_traced(step_id, stream, lambda item: fn(item.value))

    def map_traced(
        self, step_id: str, stream: Stream[Traced[X]], fn: Callable[[Traced[X]], Y | None]
    ) -> Stream[Traced[Y]]:
        """As `map`, for a function that also needs the record's origin."""
        dataflow = self.dataflow

        def apply(item: Traced[X]) -> Traced[Y] | DeadLetter | None:
            try:
                out = fn(item)
            except Exception as exc:
                return letter(dataflow, step_id, item.origin, describe(exc))
            return None if out is None else Traced(item.origin, out)

        return self.split(step_id, op.filter_map(step_id, stream, apply))

    def stateful(
        self,
        step_id: str,
        stream: Stream[tuple[str, Traced[V]]],
        builder: Callable[[S | None], Folding[V, W, S]],
    ) -> Stream[Traced[W]]:
        """A keyed fold whose values are applied one by one: one that raises is
        dead-lettered and the fold goes on with the rest."""
        dataflow = self.dataflow

        def build(resume: S | None) -> GuardedLogic[V, W, S]:
            return GuardedLogic(dataflow, step_id, builder(resume))

        mixed = op.stateful_batch(step_id, stream, build)
        return self.split(step_id, op.key_rm(f"{step_id}_unkey", mixed))

    def split(self, step_id: str, mixed: Stream[Traced[Y] | DeadLetter]) -> Stream[Traced[Y]]:
        """Values go on; dead letters go to the guard."""
        branch = op.branch(f"{step_id}_ok", mixed, lambda x: isinstance(x, Traced))
        self._letters.append(cast(Stream[DeadLetter], branch.falses))
        return cast(Stream[Traced[Y]], branch.trues)

    def finish(self, flow_letters: Sink[DeadLetter]) -> None:
        if not self._letters:
            return
        merged = (
            self._letters[0]
            if len(self._letters) == 1
            else op.merge("dead_letters", *self._letters)
        )
        op.output("dead_letter_out", merged, flow_letters)


class Folding(Protocol[V_contra, W_co, S_co]):
    """A keyed fold applied a value at a time.

    `apply` raises to refuse a value and must not change the state when it does;
    `emit` gives what a batch produced; `notify_at`/`on_notify` are the clock, as in
    Bytewax's StatefulBatchLogic; `snapshot` is None once there is nothing to keep.
    A fold whose snapshot is a copy may also define `finished() -> bool` (True once
    there is nothing to keep), so that question costs no copy after every batch.
    """

    def apply(self, value: V_contra) -> None: ...

    def emit(self) -> Iterable[W_co]: ...

    def notify_at(self) -> datetime | None: ...

    def on_notify(self) -> tuple[Iterable[W_co], bool]: ...

    def snapshot(self) -> S_co | None: ...


class GuardedLogic(op.StatefulBatchLogic[Traced[V], Traced[W] | DeadLetter, S]):
    def __init__(self, dataflow: str, step_id: str, inner: Folding[V, W, S]) -> None:
        self.dataflow = dataflow
        self.step_id = step_id
        self.inner = inner
        self.finished: Callable[[], bool] = getattr(
            inner, "finished", lambda: inner.snapshot() is None
        )

    def on_batch(self, values: list[Traced[V]]) -> tuple[Iterable[Traced[W] | DeadLetter], bool]:
        out: list[Traced[W] | DeadLetter] = []
        last: Origin | None = None
        for item in values:
            try:
                self.inner.apply(item.value)
            except Exception as exc:
                out.append(letter(self.dataflow, self.step_id, item.origin, describe(exc)))
            else:
                last = item.origin
        if last is not None:
            try:
                out.extend(Traced(last, w) for w in self.inner.emit())
            except Exception as exc:
                out.append(letter(self.dataflow, self.step_id, last, describe(exc)))
        return out, self.finished()

    def notify_at(self) -> datetime | None:
        try:
            return self.inner.notify_at()
        except Exception as exc:
            log.error("%s/%s: no timer: %s", self.dataflow, self.step_id, describe(exc))
            return None

    def on_notify(self) -> tuple[Iterable[Traced[W] | DeadLetter], bool]:
        try:
            outs, discard = self.inner.on_notify()
            return [Traced(CLOCK, w) for w in outs], discard
        except Exception as exc:
            log.error("%s/%s: timer failed, state kept: %s", self.dataflow, self.step_id, exc)
            return [letter(self.dataflow, self.step_id, CLOCK, describe(exc))], False

    def on_eof(self) -> tuple[Iterable[Traced[W] | DeadLetter], bool]:
        """A fold may flush what it holds back (`on_eof`) when a bounded run ends."""
        flush: Callable[[], tuple[Iterable[W], bool]] | None = getattr(self.inner, "on_eof", None)
        if flush is None:
            return [], False
        try:
            outs, discard = flush()
            return [Traced(CLOCK, w) for w in outs], discard
        except Exception as exc:
            log.error("%s/%s: end of input failed: %s", self.dataflow, self.step_id, exc)
            return [letter(self.dataflow, self.step_id, CLOCK, describe(exc))], False

    def snapshot(self) -> S:
        return cast(S, self.inner.snapshot())


# -- sinks -----------------------------------------------------------------------------


class BatchWriter(Protocol[X]):
    """A store adapter's write of one batch; raising means the whole batch failed."""

    def write(self, batch: list[X]) -> None: ...

    def close(self) -> None: ...


class GuardedPartition(StatelessSinkPartition[Traced[X]]):
    def __init__(
        self,
        dataflow: str,
        step_id: str,
        writer: BatchWriter[X],
        letters: LetterBox,
        backoff: Backoff,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.dataflow = dataflow
        self.step_id = step_id
        self.writer = writer
        self.letters = letters
        self.backoff = backoff
        self.sleep = sleep

    def write_batch(self, items: list[Traced[X]]) -> None:
        started = time.perf_counter()
        spans = tracing.record_spans(
            f"write {self.step_id}",
            [i.origin.traceparent for i in items],
            dataflow=self.dataflow,
            step=self.step_id,
        )
        refused: list[DeadLetter] = []
        try:
            self._write(items, refused)
        finally:
            for span in spans:
                span.end()
        if refused:
            self._publish(refused)
        SINK_BATCHES.labels(self.dataflow, self.step_id).observe(time.perf_counter() - started)
        SINK_RECORDS.labels(self.dataflow, self.step_id).inc(len(items) - len(refused))

    def _write(self, items: list[Traced[X]], refused: list[DeadLetter]) -> None:
        attempt = 0
        while True:
            try:
                self.writer.write([i.value for i in items])
                return
            except Exception as exc:
                if classify(exc) is Fault.TRANSIENT:
                    delay = self.backoff.delay(attempt)
                    log.warning(
                        "%s/%s: store unavailable (%s), retrying in %.1fs",
                        self.dataflow,
                        self.step_id,
                        describe(exc)[:300],
                        delay,
                    )
                    SINK_RETRIES.labels(self.dataflow, self.step_id).inc()
                    self.sleep(delay)
                    attempt += 1
                    continue
                if len(items) == 1:
                    log.warning(
                        "%s/%s: record refused at %s/%d/%d: %s",
                        self.dataflow,
                        self.step_id,
                        items[0].origin.topic,
                        items[0].origin.partition,
                        items[0].origin.offset,
                        describe(exc)[:300],
                    )
                    refused.append(
                        letter(self.dataflow, self.step_id, items[0].origin, describe(exc))
                    )
                    return
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "batch of %d refused, splitting: %s", len(items), traceback.format_exc()
                    )
                half = len(items) // 2
                self._write(items[:half], refused)
                self._write(items[half:], refused)
                return

    def _publish(self, refused: list[DeadLetter]) -> None:
        attempt = 0
        while True:
            try:
                self.letters.publish(refused)
                return
            except Exception as exc:
                delay = self.backoff.delay(attempt)
                log.warning("%s: dead letters not yet published (%s)", self.dataflow, exc)
                self.sleep(delay)
                attempt += 1

    def close(self) -> None:
        self.writer.close()


class GuardedSink(DynamicSink[Traced[X]]):
    """A sink whose batches survive a refused record and wait out a down store."""

    def __init__(
        self,
        dataflow: str,
        step_id: str,
        open_writer: Callable[[], BatchWriter[X]],
        open_letters: Callable[[], LetterBox],
        backoff: Backoff | None = None,
    ) -> None:
        self.dataflow = dataflow
        self.step_id = step_id
        self.open_writer = open_writer
        self.open_letters = open_letters
        self.backoff = backoff or Backoff()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> GuardedPartition[X]:
        return GuardedPartition(
            self.dataflow, self.step_id, self._open(), self.open_letters(), self.backoff
        )

    def _open(self) -> BatchWriter[X]:
        """The writer, once its stores answer: a store still starting is waited for."""
        attempt = 0
        while True:
            try:
                return self.open_writer()
            except Exception as exc:
                if classify(exc) is not Fault.TRANSIENT:
                    raise
                delay = self.backoff.delay(attempt)
                log.warning(
                    "%s/%s: waiting for its stores (%s)",
                    self.dataflow,
                    self.step_id,
                    describe(exc)[:300],
                )
                time.sleep(delay)
                attempt += 1
