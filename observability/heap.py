"""Garbage collection in long-running processes: its time measured, and long-lived
objects kept out of its walk.

`time_collections` counts the collector's time per generation
(`agora_gc_seconds_total`), in the API's workers and in every dataflow.

An API worker builds its long-lived part at start: `settle` freezes it then, and
collects the young generation after `young_threshold` new objects instead of CPython's
700, so fewer collections run and the objects of requests still in flight are not
promoted to the older generations at each one.

A dataflow's state grows while it runs; `HeapKeeper` is for that. CPython's cyclic
collector walks every object of its oldest generation on each full collection, and
starts one whenever a quarter as many objects again have survived into that
generation. A dataflow's state is exactly such a heap: `spam` holds about 4.5
million tracked objects (its voters' and pairs' windows), a full collection of them
takes 0.5-1 s, and under load one came every minute or so (29 % of `spam`'s CPU in a
profile during `votes_http`). It finds nothing: the state is dataclasses, dicts and
tuples that reference counting frees; cycles come from short-lived things (an
exception and its traceback), which die young.

So the objects that have lived a while are moved out of the collector's sight
(`gc.freeze`) every `freeze_every`, after the young generations have been collected,
and the collector only walks what is newer. Every `full_every` everything is put back
and collected once, so a cycle that was frozen is still freed, only later.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from observability.metrics import GC_SECONDS

log = logging.getLogger("heap")


def time_collections() -> None:
    """Count the collector's time per generation (`agora_gc_seconds_total`) in this
    process."""
    children = [GC_SECONDS.labels(str(g)) for g in range(3)]
    started = 0.0

    def timed(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            children[info["generation"]].inc(time.perf_counter() - started)

    gc.callbacks.append(timed)


def collect_young_after(young_threshold: int) -> None:
    """Collect the young generation after this many new objects (the older
    generations' thresholds stay)."""
    gc.set_threshold(young_threshold, *gc.get_threshold()[1:])


def settle(young_threshold: int) -> None:
    """For a process whose long-lived objects are built at start (an API worker): out
    of the collector's walk with them, and the young generation collected less often."""
    collect_young_after(young_threshold)
    gc.freeze()


@dataclass
class HeapKeeper:
    freeze_every: float  # seconds; 0: leave the collector as it is
    full_every: float  # seconds between full collections of everything
    young_threshold: int = 700  # new objects between collections of the young generation
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.last_full = self.clock()

    def tick(self) -> None:
        """Freeze what survived the young generations; once per `full_every`, first
        thaw and collect everything."""
        now = self.clock()
        if now - self.last_full >= self.full_every:
            self.last_full = now
            gc.unfreeze()
            started = time.perf_counter()
            found = gc.collect()
            log.info("full collection: %d unreachable, %.2fs", found, time.perf_counter() - started)
        else:
            gc.collect(1)
        gc.freeze()

    def start(self) -> threading.Thread | None:
        """Set the young generation's threshold, and tick every `freeze_every` seconds
        in a daemon thread (none if 0)."""
        collect_young_after(self.young_threshold)
        if self.freeze_every <= 0:
            return None

        def loop() -> None:
            while True:
                time.sleep(self.freeze_every)
                self.tick()

        thread = threading.Thread(target=loop, name="heap-keeper", daemon=True)
        thread.start()
        return thread
