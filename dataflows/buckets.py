"""Many keys' folds in a bounded number of Bytewax keys, with their timers in a heap.

Bytewax 0.21 keeps each key's next notification in a map and, on every activation of a
stateful step, scans the whole map for due keys and its minimum: an activation costs
time in proportion to the keys that have a timer, due or not (2.8 ms for 100,000 keys
here, against 19 µs for 100). Folds that evict idle state by a timer have one per key,
so a step's cost per record grew with the number of users it had ever seen.

Here a step's keys are hashed into a fixed number of buckets; each bucket is one Bytewax
key whose logic holds its keys' logics and a heap of their timers. An activation then
scans the buckets' timers, not the keys'. The price: a bucket's snapshot holds all of
its keys, so a change to one key snapshots its bucket's keys at the epoch's end.

The bucket of a key must not change while state exists: `bucket_of` is a stable hash,
and a step's bucket count is fixed (changing it needs a replay of the flow)."""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

import bytewax.operators as op

V = TypeVar("V")
W = TypeVar("W")
S = TypeVar("S")


def bucket_of(key: str, buckets: int) -> str:
    """The bucket of `key`: the same in every process and run (not `hash`, which is
    salted per process)."""
    return str(zlib.crc32(key.encode("utf-8", "surrogatepass")) % buckets)


class BucketLogic(op.StatefulBatchLogic[tuple[str, V], W, dict[str, S]]):
    """The logics of one bucket's keys. Values arrive as (key, value); each key's values
    go to its own logic in arrival order, exactly as if it were a Bytewax key."""

    def __init__(
        self,
        make: Callable[[S | None], op.StatefulBatchLogic[V, W, S]],
        resume: dict[str, S] | None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.make = make
        self.now = now
        self.logics: dict[str, op.StatefulBatchLogic[V, W, S]] = {}
        self.due: dict[str, datetime] = {}  # each key's current timer
        self.heap: list[tuple[datetime, str]] = []  # may hold stale entries
        for key, state in (resume or {}).items():
            logic = make(state)
            self.logics[key] = logic
            self._schedule(key, logic)

    def _schedule(self, key: str, logic: op.StatefulBatchLogic[V, W, S]) -> None:
        when = logic.notify_at()
        if when is None:
            self.due.pop(key, None)
            return
        if self.due.get(key) == when:
            return
        self.due[key] = when
        heapq.heappush(self.heap, (when, key))
        if len(self.heap) > 2 * len(self.due) + 64:  # drop the stale entries
            self.heap = [(when, key) for key, when in self.due.items()]
            heapq.heapify(self.heap)

    def _settle(self, key: str, logic: op.StatefulBatchLogic[V, W, S], discard: bool) -> None:
        if discard:
            del self.logics[key]
            self.due.pop(key, None)
        else:
            self._schedule(key, logic)

    def on_batch(self, values: list[tuple[str, V]]) -> tuple[Iterable[W], bool]:
        by_key: dict[str, list[V]] = {}
        for key, value in values:
            by_key.setdefault(key, []).append(value)
        out: list[W] = []
        for key, batch in by_key.items():
            logic = self.logics.get(key)
            if logic is None:
                logic = self.logics[key] = self.make(None)
            emitted, discard = logic.on_batch(batch)
            out.extend(emitted)
            self._settle(key, logic, discard)
        return out, not self.logics

    def notify_at(self) -> datetime | None:
        heap, due = self.heap, self.due
        while heap and due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def on_notify(self) -> tuple[Iterable[W], bool]:
        now = self.now()
        out: list[W] = []
        while (when := self.notify_at()) is not None and when <= now:
            _, key = heapq.heappop(self.heap)
            del self.due[key]
            logic = self.logics[key]
            emitted, discard = logic.on_notify()
            out.extend(emitted)
            self._settle(key, logic, discard)
        return out, not self.logics

    def on_eof(self) -> tuple[Iterable[W], bool]:
        out: list[W] = []
        for key, logic in list(self.logics.items()):
            emitted, discard = logic.on_eof()
            out.extend(emitted)
            self._settle(key, logic, discard)
        return out, not self.logics

    def snapshot(self) -> dict[str, S]:
        return {key: logic.snapshot() for key, logic in self.logics.items()}
