"""What a far-off timer per key costs a Bytewax stateful step, against the wake-up wheel.

    python -m benchmarks.timer_scan [--keys 20000 100000 300000] [--seconds 6]

Bytewax 0.21 walks every key's `notify_at` on each activation of a stateful step,
however far off the time. The votes and karma flows held one such timer per target
(its eviction, 180 days out) until `dataflows.wakeups` took them. Each run here builds
`--keys` keys in one step, then feeds it 60 items every 20 ms (the votes flow's batch
interval) for `--seconds`, timed from the first of those, three ways in the same run:
no timers at all, a far timer per key, and the far time filed with a `WakeupWheel`
(its due keys handed out by the feed with its items, as the live flows' Kafka
partitions do). It prints the process CPU of each run and what the timers cost above
the run without them, in CPU ms per second of input.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.testing import run_main

from dataflows.wakeups import Wake, WakeupWheel, file_or_keep

BATCH = 60
EVERY = 0.02  # seconds between batches: the votes flow's interval
FAR = timedelta(days=180)
STEADY_FROM: list[float] = []  # CPU time when the feed's steady phase began

Item = tuple[str, int | Wake]


class _Feed(StatefulSourcePartition[Item, None]):
    """Every key once, then BATCH items every EVERY seconds for `seconds`."""

    def __init__(self, keys: int, seconds: float, wheel: WakeupWheel | None) -> None:
        self.keys, self.seconds, self.wheel = keys, seconds, wheel
        self.sent = 0
        self.started: float | None = None
        self.next = 0.0

    def next_batch(self) -> list[Item]:
        now = time.monotonic()
        if self.started is None:
            self.started = self.next = now
            return [(f"k{j}", 1) for j in range(self.keys)]
        if now - self.started > self.seconds:
            raise StopIteration
        if self.sent == 0:  # every key is built (one worker: the step ran): time from here
            STEADY_FROM.append(time.process_time())
        self.next += EVERY
        self.sent += 1
        batch: list[Item] = [(f"k{(self.sent * BATCH + j) % self.keys}", 1) for j in range(BATCH)]
        if self.wheel is not None:  # as the flows' Kafka partitions do
            batch += [(key, Wake()) for key in self.wheel.due()]
        return batch

    def next_awake(self) -> datetime | None:
        wait = max(0.0, self.next - time.monotonic())
        return datetime.now(UTC) + timedelta(seconds=wait)

    def snapshot(self) -> None:
        return None


class _Source(FixedPartitionedSource[Item, None]):
    def __init__(self, keys: int, seconds: float, wheel: WakeupWheel | None) -> None:
        self.keys, self.seconds, self.wheel = keys, seconds, wheel

    def list_parts(self) -> list[str]:
        return ["feed"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Feed:
        return _Feed(self.keys, self.seconds, self.wheel)


class _Logic(op.StatefulBatchLogic[int | Wake, int, int]):
    def __init__(self) -> None:
        self.count = 0
        self.when: Callable[[], datetime | None] = lambda: None

    def on_batch(self, values: list[int | Wake]) -> tuple[list[int], bool]:
        self.count += len(values)
        return [], False

    def notify_at(self) -> datetime | None:
        return self.when()

    def on_notify(self) -> tuple[list[int], bool]:
        return [], True

    def snapshot(self) -> int:
        return self.count


def run(keys: int, seconds: float, mode: str) -> float:
    """Process CPU seconds of one run's steady phase (after every key was built): mode
    'none', 'timer' or 'wheel'."""
    far = datetime.now(UTC) + FAR
    wheel = WakeupWheel()
    flow = Dataflow(f"timer_scan_{mode}")
    items = op.input("in", flow, _Source(keys, seconds, wheel if mode == "wheel" else None))

    def build(_resume: int | None) -> _Logic:
        logic = _Logic()
        if mode == "timer":
            logic.when = lambda: far
        elif mode == "wheel":
            key = f"k{id(logic)}"
            logic.when = lambda: file_or_keep(wheel, key, far)
        return logic

    out = op.stateful_batch("step", items, build)
    op.inspect("drop", out, lambda *_: None)
    STEADY_FROM.clear()
    run_main(flow)
    return time.process_time() - STEADY_FROM[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[20_000, 100_000, 300_000])
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    results = {}
    print(
        f"a stateful step fed {BATCH} items every {EVERY * 1000:.0f} ms for {args.seconds:.0f} s;"
        " CPU s per run, and the timers' cost above no timers (CPU ms per second of input)"
    )
    for keys in args.keys:
        cpu = {mode: run(keys, args.seconds, mode) for mode in ("none", "timer", "wheel")}
        extra = {m: (cpu[m] - cpu["none"]) / args.seconds * 1000 for m in ("timer", "wheel")}
        print(
            f"  {keys:>8,} keys: none {cpu['none']:.2f} s, timer per key {cpu['timer']:.2f} s"
            f" (+{extra['timer']:.0f} ms/s), wheel {cpu['wheel']:.2f} s"
            f" (+{extra['wheel']:.0f} ms/s)"
        )
        results[keys] = {"cpu_s": cpu, "extra_ms_per_s": extra}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
