"""Far-off wake-ups for keyed state, without a Bytewax timer per key.

Bytewax 0.21 keeps each key's `notify_at` in one map and, on every activation of a
stateful step, walks the whole map twice or more (the due keys, then the earliest
time), so each key holding a timer costs every batch, however far off its time.
The votes and karma folds hold one timer per target for its eviction, 180 days out:
with 300,000 such keys a step fed 50 batches a second spent about half a core on
the walk alone (`python -m benchmarks.timer_scan`).

A far-off time goes into this process's `WakeupWheel` instead: keys grouped by the
slot they are due in (a minute, or a second for `ranking`), the slots in a heap. The
flow's Kafka partitions hand each due key out with their records (`Woken`), Bytewax
routes it to the key's state like any record, and the fold then does what its timer
would have done, or files itself again if it was woken early. A key's wake-up is a
hint, not a fact: one that arrives for a key long gone builds an empty fold that is
discarded at once. The wheel is memory only: after a restart each key's resumed fold
files itself again (Bytewax asks every resumed fold for `notify_at`).
"""

from __future__ import annotations

import heapq
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar, cast

import bytewax.operators as op
from bytewax.dataflow import Stream

from dataflows.guard import CLOCK, Traced

X = TypeVar("X")

# A fold files a time this far off or further with the wheel; a nearer one stays a
# Bytewax timer (few keys hold one: a held score announcement). A flow whose keys are
# all woken soon and often (ranking's young posts) files every time with the wheel.
FAR = timedelta(minutes=10)
SLOT = 60.0  # seconds per group of keys: a wake-up is at most this late


@dataclass(frozen=True)
class Wake:
    """The value a woken key receives: check your time now."""


WAKE = Wake()


def _now() -> datetime:
    return datetime.now(UTC)


class WakeupWheel:
    """Keys by the slot they are due in; shared by the worker threads of one process."""

    def __init__(self, clock: Callable[[], datetime] = _now, slot: float = SLOT) -> None:
        self.clock = clock
        self.slot = slot  # seconds: a wake-up is at most this late
        self._slots: dict[int, set[str]] = {}
        self._order: list[int] = []  # a heap of the slots held
        self._lock = threading.Lock()

    def at(self, key: str, when: datetime) -> None:
        """Wake `key` at `when` (up to a slot late). Filing a key again for the same
        slot costs nothing; for another slot, it is woken at both and looks again."""
        slot = math.ceil(when.timestamp() / self.slot)
        with self._lock:
            keys = self._slots.get(slot)
            if keys is None:
                self._slots[slot] = keys = set()
                heapq.heappush(self._order, slot)
            keys.add(key)

    def due(self) -> list[str]:
        """The keys due now, each handed out once."""
        now = self.clock().timestamp()
        out: list[str] = []
        with self._lock:
            while self._order and self._order[0] * self.slot <= now:
                out.extend(self._slots.pop(heapq.heappop(self._order)))
        return out

    def next_due(self) -> datetime | None:
        with self._lock:
            if not self._order:
                return None
            return datetime.fromtimestamp(self._order[0] * self.slot, UTC)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(keys) for keys in self._slots.values())


def file_or_keep(
    wheel: WakeupWheel | None, key: str, when: datetime | None, far: timedelta = FAR
) -> datetime | None:
    """A fold's `notify_at` for a time that may be far: the wheel takes one `far` off or
    further (and Bytewax gets no timer), a nearer one stays Bytewax's. Without a wheel
    (a bounded run, a unit test) every time stays Bytewax's."""
    if wheel is None or when is None or when - wheel.clock() < far:
        return when
    wheel.at(key, when)
    return None


@dataclass(frozen=True)
class Woken:
    """A key the wheel found due, travelling in its flow's input beside the records (a
    source of its own would spin: Bytewax re-activates an input whose wake-up time has
    passed at once, again and again, while the steps after it finish an epoch)."""

    key: str


def with_wakeups(
    keyed: Stream[tuple[str, Traced[X]]],
    items: Stream[object],
    wheel: WakeupWheel | None,
    prefix: str = "",
    step_id: str = "woken",
) -> Stream[tuple[str, Traced[X | Wake]]]:
    """A stateful step's keyed input with the wheel's due keys among the flow's input
    `items` merged in (as it is, without a wheel). A flow with several such steps files
    each step's keys under its own `prefix` in its one wheel; they come back here
    without it, each step under its own `step_id`."""
    # A value is also something its fold applies (Traced is invariant: cast, not convert).
    out = cast(Stream[tuple[str, Traced[X | Wake]]], keyed)
    if wheel is None:
        return out
    cut = len(prefix)

    def due(item: object) -> tuple[str, Traced[X | Wake]] | None:
        if isinstance(item, Woken) and item.key.startswith(prefix):
            return item.key[cut:], Traced(CLOCK, WAKE)
        return None

    return op.merge(f"{step_id}_merged", out, op.filter_map(step_id, items, due))
