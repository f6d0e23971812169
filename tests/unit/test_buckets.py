"""Keys held in buckets: each key's fold sees exactly what it would as a Bytewax key, its
timer fires when due and not before, and a bucket's state survives a restart."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from dataflows.buckets import BucketLogic, bucket_of
from dataflows.guard import Guard, Origin, Traced

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Counter(op.StatefulBatchLogic[int, tuple[int, int], int]):
    """Counts its values; after `idle` without one it reports its count and is dropped."""

    def __init__(self, state: int | None, clock: list[datetime], idle: timedelta) -> None:
        self.n = state or 0
        self.clock = clock
        self.idle = idle
        self.touched = clock[0]
        self.seen: list[int] = []

    def on_batch(self, values: list[int]) -> tuple[Iterable[tuple[int, int]], bool]:
        self.seen.extend(values)
        self.n += len(values)
        self.touched = self.clock[0]
        return [(values[-1], self.n)], False

    def notify_at(self) -> datetime | None:
        return self.touched + self.idle

    def on_notify(self) -> tuple[Iterable[tuple[int, int]], bool]:
        return [(-1, self.n)], True

    def snapshot(self) -> int:
        return self.n


def bucket(resume: dict[str, int] | None = None) -> tuple[BucketLogic, list[datetime]]:
    clock = [T0]
    logic: BucketLogic = BucketLogic(
        lambda state: Counter(state, clock, timedelta(seconds=10)), resume, lambda: clock[0]
    )
    return logic, clock


def test_bucket_of_is_stable_and_in_range():
    assert bucket_of("u_01HZX", 256) == bucket_of("u_01HZX", 256)
    assert bucket_of("abc", 256) == str(891568578 % 256)  # crc32, the same in every process
    assert {int(bucket_of(f"user{i}", 16)) for i in range(1000)} == set(range(16))
    assert bucket_of("\udcff lone surrogate", 8) in {str(i) for i in range(8)}


def test_each_key_gets_its_own_values_in_order():
    logic, _ = bucket()
    out, discard = logic.on_batch([("a", 1), ("b", 2), ("a", 3), ("a", 4), ("b", 5)])
    assert sorted(out) == [(4, 3), (5, 2)]
    assert discard is False
    assert logic.logics["a"].seen == [1, 3, 4]  # type: ignore[attr-defined]
    assert logic.logics["b"].seen == [2, 5]  # type: ignore[attr-defined]


def test_timers_fire_when_due_and_not_before():
    logic, clock = bucket()
    logic.on_batch([("a", 1)])
    clock[0] = T0 + timedelta(seconds=4)
    logic.on_batch([("b", 1)])
    assert logic.notify_at() == T0 + timedelta(seconds=10)  # the earliest key's

    clock[0] = T0 + timedelta(seconds=8)
    logic.on_batch([("a", 2)])  # a's timer moves to 18 s: its old entry must not fire
    assert logic.notify_at() == T0 + timedelta(seconds=14)

    clock[0] = T0 + timedelta(seconds=15)
    out, discard = logic.on_notify()
    assert list(out) == [(-1, 1)]  # b only
    assert discard is False
    assert set(logic.logics) == {"a"}
    assert logic.notify_at() == T0 + timedelta(seconds=18)

    clock[0] = T0 + timedelta(seconds=18)
    out, discard = logic.on_notify()
    assert list(out) == [(-1, 2)]
    assert discard is True  # nothing left in the bucket: Bytewax drops it
    assert logic.notify_at() is None


def test_rescheduling_does_not_grow_the_heap_without_bound():
    logic, clock = bucket()
    for i in range(5000):
        clock[0] = T0 + timedelta(milliseconds=i)
        logic.on_batch([("a", i), ("b", i)])
    assert len(logic.heap) <= 2 * 2 + 64
    assert logic.notify_at() == T0 + timedelta(milliseconds=4999, seconds=10)


def test_snapshot_and_resume_keep_every_key_and_its_timer():
    logic, _ = bucket()
    logic.on_batch([("a", 1), ("a", 2), ("b", 3)])
    state = logic.snapshot()
    assert state == {"a": 2, "b": 1}

    resumed, _clock = bucket(state)
    assert set(resumed.logics) == {"a", "b"}
    assert resumed.notify_at() == T0 + timedelta(seconds=10)
    out, _ = resumed.on_batch([("a", 9)])
    assert list(out) == [(9, 3)]


def test_end_of_input_reaches_every_key():
    class Flushing(Counter):
        def on_eof(self) -> tuple[Iterable[tuple[int, int]], bool]:
            return [(0, self.n)], True

    clock = [T0]
    logic: BucketLogic = BucketLogic(
        lambda state: Flushing(state, clock, timedelta(seconds=10)), None, lambda: clock[0]
    )
    logic.on_batch([("a", 1), ("b", 1), ("b", 2)])
    out, discard = logic.on_eof()
    assert sorted(out) == [(0, 1), (0, 2)]
    assert discard is True


# -- in a running flow ---------------------------------------------------------------


class Tally:
    """A fold with an eviction timer far away, as the spam flow's are."""

    def __init__(self, state: int | None) -> None:
        self.n = state or 0
        self.out: list[tuple[str, int]] = []
        self.key = ""

    def apply(self, value: tuple[str, int]) -> None:
        if value[1] < 0:
            raise ValueError("negative")
        self.key = value[0]
        self.n += value[1]
        self.out.append((self.key, self.n))

    def emit(self) -> Iterable[tuple[str, int]]:
        out, self.out = self.out, []
        return out

    def notify_at(self) -> datetime | None:
        return datetime.now(UTC) + timedelta(days=7)

    def on_notify(self) -> tuple[Iterable[tuple[str, int]], bool]:
        return (), True

    def snapshot(self) -> int | None:
        return self.n


def tally_flow(items: list[tuple[str, int]], buckets: int, out: list, letters: list) -> Dataflow:
    flow = Dataflow("tally")
    guard = Guard("tally")
    origin = Origin("t", 0, 0, b"")
    source = op.input("in", flow, TestingSource([Traced(origin, v) for v in items], 7))
    keyed = op.key_on("key", source, lambda t: t.value[0])
    if buckets:
        tallies = guard.stateful_buckets("tally", keyed, Tally, buckets)
    else:
        tallies = guard.stateful("tally", keyed, Tally)
    op.output("out", op.map("value", tallies, lambda t: t.value), TestingSink(out))
    guard.finish(TestingSink(letters))
    return flow


def test_a_flow_with_buckets_gives_what_one_with_keys_gives():
    rnd = random.Random(7)
    items = [(f"k{rnd.randrange(300)}", rnd.randrange(-1, 5)) for _ in range(3000)]
    by_keys: list = []
    by_buckets: list = []
    letters_keys: list = []
    letters_buckets: list = []
    run_main(tally_flow(items, 0, by_keys, letters_keys))
    run_main(tally_flow(items, 16, by_buckets, letters_buckets))

    def per_key(out: list) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for key, n in out:
            found.setdefault(key, []).append(n)
        return found

    assert per_key(by_buckets) == per_key(by_keys)  # the same running totals, in order
    assert len(letters_buckets) == len(letters_keys) == sum(1 for _, v in items if v < 0)


def test_bucket_state_survives_a_restart(tmp_path: Path):
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    first = [("a", 1), ("b", 2), ("a", 3)]
    run_main(tally_flow(first, 4, [], []), epoch_interval=timedelta(0), recovery_config=recovery)
    out: list = []
    # The source resumes after the items it already gave; the folds from their state.
    run_main(
        tally_flow([*first, ("a", 10), ("b", 1)], 4, out, []),
        epoch_interval=timedelta(0),
        recovery_config=recovery,
    )
    assert sorted(out) == [("a", 14), ("b", 3)]


def test_a_step_moved_into_buckets_starts_empty_beside_its_old_state(tmp_path: Path):
    """The per-key state under the step's former id is neither misread nor in the way:
    the bucketed step starts empty (the flow is replayed to rebuild it)."""
    init_db_dir(tmp_path, 1)
    recovery = RecoveryConfig(str(tmp_path))
    first = [("a", 1), ("b", 2), ("a", 3)]
    run_main(tally_flow(first, 0, [], []), epoch_interval=timedelta(0), recovery_config=recovery)
    out: list = []
    run_main(
        tally_flow([*first, ("a", 10), ("b", 1)], 4, out, []),
        epoch_interval=timedelta(0),
        recovery_config=recovery,
    )
    assert sorted(out) == [("a", 10), ("b", 1)]
