"""The guarded sink: a refused record is found by splitting its batch, the good ones
are written, a down store is waited out and never dead-letters anything."""

from __future__ import annotations

import asyncpg
import pytest
import redis
from cassandra import InvalidRequest, OperationTimedOut
from cassandra.cluster import NoHostAvailable

from dataflows.guard import (
    Backoff,
    Fault,
    GuardedLogic,
    GuardedPartition,
    Origin,
    Traced,
    classify,
)
from domain.errors import NotFound
from schemas.events import DeadLetter
from stores.placement import PlacementUnavailable


class Store:
    """Refuses any batch holding a poison value; is down for the first `down` calls."""

    def __init__(self, down: int = 0) -> None:
        self.rows: list[str] = []
        self.calls = 0
        self.down = down

    def write(self, batch: list[str]) -> None:
        self.calls += 1
        if self.calls <= self.down:
            raise ConnectionRefusedError("connection refused")
        if any("\x00" in v for v in batch):
            raise asyncpg.CharacterNotInRepertoireError(
                'invalid byte sequence for encoding "UTF8": 0x00'
            )
        self.rows.extend(batch)

    def close(self) -> None:
        pass


class Box:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def publish(self, letters: list[DeadLetter]) -> None:
        self.letters.extend(letters)


def traced(values: list[str]) -> list[Traced[str]]:
    return [Traced(Origin("posts", 0, i, v.encode()), v) for i, v in enumerate(values)]


def partition(store: Store, box: Box, sleeps: list[float]) -> GuardedPartition[str]:
    return GuardedPartition("content", "posts_out", store, box, Backoff(), sleeps.append)


def test_poison_in_a_batch_is_found_and_the_rest_written() -> None:
    values = [f"row{i}" for i in range(16)]
    values[5] = "bad\x00"
    values[11] = "worse\x00"
    store, box, sleeps = Store(), Box(), list[float]()
    partition(store, box, sleeps).write_batch(traced(values))
    assert sorted(store.rows) == sorted(v for v in values if "\x00" not in v)
    assert len(store.rows) == 14  # every good record exactly once
    assert [(d.source_topic, d.offset) for d in box.letters] == [("posts", 5), ("posts", 11)]
    assert "0x00" in box.letters[0].reason and "posts_out" in box.letters[0].reason
    assert "\x00" not in box.letters[0].raw
    assert sleeps == []


def test_a_down_store_is_retried_with_backoff_and_nothing_is_dead_lettered() -> None:
    store, box, sleeps = Store(down=4), Box(), list[float]()
    partition(store, box, sleeps).write_batch(traced(["a", "b"]))
    assert store.rows == ["a", "b"]
    assert box.letters == []
    assert sleeps == [0.1, 0.2, 0.4, 0.8]


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        (asyncpg.CharacterNotInRepertoireError("0x00"), Fault.RECORD),
        (asyncpg.NumericValueOutOfRangeError("out of range"), Fault.RECORD),
        (asyncpg.UniqueViolationError("dup"), Fault.RECORD),
        (asyncpg.ProgramLimitExceededError("index row too big"), Fault.RECORD),
        (asyncpg.CannotConnectNowError("starting up"), Fault.TRANSIENT),
        (asyncpg.AdminShutdownError("shutting down"), Fault.TRANSIENT),
        (asyncpg.TooManyConnectionsError("too many"), Fault.TRANSIENT),
        (asyncpg.SerializationError("retry"), Fault.TRANSIENT),
        (asyncpg.InterfaceError("connection is closed"), Fault.TRANSIENT),
        (ConnectionResetError(), Fault.TRANSIENT),
        (TimeoutError(), Fault.TRANSIENT),
        (InvalidRequest("bad"), Fault.RECORD),
        (NoHostAvailable("down", {}), Fault.TRANSIENT),
        (OperationTimedOut("slow"), Fault.TRANSIENT),
        (redis.ResponseError("script: bad value"), Fault.RECORD),
        (redis.ConnectionError("refused"), Fault.TRANSIENT),
        (redis.BusyLoadingError("loading"), Fault.TRANSIENT),
        (PlacementUnavailable("unconfirmed for 6s"), Fault.TRANSIENT),  # Postgres away
        (RuntimeError("from our code"), Fault.RECORD),
        (ValueError("bad"), Fault.RECORD),
        (KeyError("k"), Fault.RECORD),
        (NotFound("post not found"), Fault.RECORD),
        (OverflowError(), Fault.RECORD),
    ],
)
def test_classify(exc: BaseException, fault: Fault) -> None:
    assert classify(exc) is fault


def test_a_sink_waits_for_its_store_to_come_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataflows import guard

    monkeypatch.setattr(guard.time, "sleep", lambda _s: None)
    attempts: list[int] = []

    def open_writer() -> Store:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionRefusedError("not yet")
        return Store()

    sink = guard.GuardedSink("content", "posts_out", open_writer, Box)
    part = sink.build("posts_out", 0, 1)
    part.write_batch(traced(["a"]))
    assert len(attempts) == 3
    assert isinstance(part.writer, Store) and part.writer.rows == ["a"]


class CopyOnSnapshot:
    """A fold whose snapshot is a copy: the guard must not take one after every batch."""

    def __init__(self) -> None:
        self.total: int | None = 0
        self.snapshots = 0

    def apply(self, value: int) -> None:
        self.total = None if value < 0 else (self.total or 0) + value

    def emit(self) -> list[int]:
        return [] if self.total is None else [self.total]

    def notify_at(self) -> None:
        return None

    def on_notify(self) -> tuple[list[int], bool]:
        return [], False

    def finished(self) -> bool:
        return self.total is None

    def snapshot(self) -> int | None:
        self.snapshots += 1
        return self.total


def test_a_fold_that_knows_it_is_finished_is_not_copied_per_batch() -> None:
    fold = CopyOnSnapshot()
    logic = GuardedLogic("flow", "step", fold)
    origin = Origin("t", 0, 0)
    out, discard = logic.on_batch([Traced(origin, 2), Traced(origin, 3)])
    assert [t.value for t in out if isinstance(t, Traced)] == [5] and not discard
    _, discard = logic.on_batch([Traced(origin, -1)])
    assert discard
    assert fold.snapshots == 0
