"""Garbage collection for a process holding a large, long-lived state.

CPython's cyclic collector walks every object of its oldest generation on each full
collection, and starts one whenever a quarter as many objects again have survived into
that generation. A dataflow's state is exactly such a heap: `spam` holds about 4.5
million tracked objects (its voters' and pairs' windows), a full collection of them
takes 0.5-1 s, and under load one came every minute or so (29 % of `spam`'s CPU in a
profile during `votes_http`). It finds nothing: the state is dataclasses, dicts and
tuples that reference counting frees; cycles come from short-lived things (an
exception and its traceback), which die young.

So the objects that have lived a while are moved out of the collector's sight
(`gc.freeze`) every `freeze_every`, after the young generations have been collected,
and the collector only walks what is newer. Every `full_every` everything is put back
and collected once, so a cycle that was frozen is still freed, only later. The young
generation is collected after `young_threshold` new objects, as in the API (see
`api.app.settle_heap`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("dataflows.heap")


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
        gc.set_threshold(self.young_threshold, *gc.get_threshold()[1:])
        if self.freeze_every <= 0:
            return None

        def loop() -> None:
            while True:
                time.sleep(self.freeze_every)
                self.tick()

        thread = threading.Thread(target=loop, name="heap-keeper", daemon=True)
        thread.start()
        return thread
