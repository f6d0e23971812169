"""The heap keeper: long-lived objects leave the collector's walk, and a cycle among
them is still freed at the next full collection."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from sanic import Request, Sanic
from sanic.compat import Header

from api.limits import Client
from observability.heap import HeapKeeper, settle, time_collections
from observability.metrics import GC_SECONDS


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()
    gc.collect()


def a_cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_tick_moves_what_lived_out_of_the_collectors_walk() -> None:
    keeper = HeapKeeper(60, 3600, clock=Clock())
    kept = [Node() for _ in range(100)]
    keeper.tick()
    assert gc.get_freeze_count() >= len(kept)
    walked = {id(o) for o in gc.get_objects()}  # every generation the collector walks
    assert not any(id(node) in walked for node in kept)


def test_a_frozen_cycle_is_freed_at_the_next_full_collection() -> None:
    clock = Clock()
    keeper = HeapKeeper(60, 3600, clock=clock)
    ref = a_cycle()
    gc.freeze()  # the cycle lived long enough to be frozen before it became garbage
    clock.now = 60
    keeper.tick()
    gc.collect()
    assert ref() is not None  # frozen: no collection sees it
    clock.now = 3600
    keeper.tick()
    assert ref() is None
    assert gc.get_freeze_count() > 0  # what lives is frozen again


def test_a_young_cycle_is_freed_by_a_tick() -> None:
    keeper = HeapKeeper(60, 3600, clock=Clock())
    ref = a_cycle()
    keeper.tick()
    assert ref() is None


def test_zero_freezes_nothing_and_the_young_threshold_is_set() -> None:
    assert HeapKeeper(0, 3600, young_threshold=5000).start() is None
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[0] == 5000


def test_collections_are_timed_by_generation() -> None:
    before = len(gc.callbacks)
    time_collections()
    try:
        full = GC_SECONDS.labels("2")
        was = full._value.get()
        gc.collect()
        assert full._value.get() > was
    finally:
        del gc.callbacks[before:]


def test_an_api_worker_freezes_what_it_built_and_collects_the_young_less_often() -> None:
    built = [Node() for _ in range(10)]
    settle(10_000)
    assert gc.get_threshold()[0] == 10_000
    walked = {id(o) for o in gc.get_objects()}
    assert not any(id(node) in walked for node in built)


def test_a_request_with_its_client_is_freed_when_dropped_not_at_a_collection() -> None:
    # The rate limiter keeps the request's client in `request.ctx`: a strong reference
    # back made every request a cycle for the collector.
    app = Sanic("heap_test_app")
    request = Request(b"/api/v1/votes", Header(), "1.1", "PUT", None, app)  # type: ignore[arg-type]
    request.ctx.client = Client(request, "secret")
    gone = weakref.ref(request)
    gc.disable()
    try:
        del request
        assert gone() is None
    finally:
        gc.enable()
