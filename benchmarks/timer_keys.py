"""What a stateful step costs per record as its keys grow: one Bytewax key per key
against keys held in buckets (`dataflows/buckets.py`), in the same run.

python -m benchmarks.timer_keys [--keys 1000,10000,100000] [--records 30000]
    [--batch 1000] [--buckets 256] [--epoch-ms 200]

Each key's fold keeps an eviction timer a week away, as the spam flow's voters and
voter/author pairs do. First every key gets a record (the state a long-running flow
holds), then `--records` records on keys drawn at random arrive `--batch` at a time
(one activation each) and are timed, recovery on (SQLite in a temporary folder) with a
snapshot every `--epoch-ms`, so the price of bucketing (a bucket's keys are snapshotted
together) is in the figure. Runs in-process with `bytewax.testing`: no stack needed."""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from dataflows.guard import Guard, Origin, Traced

IDLE = timedelta(days=7)
ORIGIN = Origin("bench", 0, 0, b"")


class Marks:
    """perf_counter at the first and the last timed record."""

    def __init__(self, last: int) -> None:
        self.last = last
        self.at: dict[int, float] = {}


class IdleFold:
    """Counts a key's records; forgets the key after a week without one."""

    def __init__(self, state: int | None, marks: Marks) -> None:
        self.n = state or 0
        self.marks = marks
        self.touched = datetime.now(UTC)

    def apply(self, value: tuple[str, int]) -> None:
        self.n += 1
        self.touched = datetime.now(UTC)
        if value[1] in (0, self.marks.last):
            self.marks.at[value[1]] = time.perf_counter()

    def emit(self) -> Iterable[int]:
        return ()

    def notify_at(self) -> datetime | None:
        return self.touched + IDLE

    def on_notify(self) -> tuple[Iterable[int], bool]:
        return (), True

    def snapshot(self) -> int | None:
        return self.n


def run_once(keys: int, records: int, batch: int, buckets: int, epoch: timedelta) -> float:
    """Microseconds per timed record; `buckets` 0 means one Bytewax key per key."""
    rnd = random.Random(keys)
    items = [(f"user{i}", -1) for i in range(keys)]
    items += [(f"user{rnd.randrange(keys)}", j) for j in range(records)]
    marks = Marks(records - 1)
    flow = Dataflow("timer_keys")
    guard = Guard("timer_keys")
    source = op.input("in", flow, TestingSource([Traced(ORIGIN, i) for i in items], batch))
    keyed = op.key_on("by_key", source, lambda t: t.value[0])
    if buckets:
        folded = guard.stateful_buckets(
            "fold", keyed, lambda resume: IdleFold(resume, marks), buckets
        )
    else:
        folded = guard.stateful("fold", keyed, lambda resume: IdleFold(resume, marks))
    op.output("out", folded, TestingSink([]))
    guard.finish(TestingSink([]))
    with tempfile.TemporaryDirectory() as folder:
        init_db_dir(folder, 1)
        run_main(flow, epoch_interval=epoch, recovery_config=RecoveryConfig(folder))
    return (marks.at[records - 1] - marks.at[0]) / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", default="1000,10000,100000")
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--buckets", type=int, default=256)
    parser.add_argument("--epoch-ms", type=int, default=200)
    args = parser.parse_args()
    epoch = timedelta(milliseconds=args.epoch_ms)
    print(
        f"{args.records} records, {args.batch} per activation, a snapshot every "
        f"{args.epoch_ms} ms; µs per record"
    )
    print(f"{'keys':>8} {'per key':>9} {f'{args.buckets} buckets':>12} {'ratio':>6}")
    results = []
    for keys in (int(k) for k in args.keys.split(",")):
        per_key = run_once(keys, args.records, args.batch, 0, epoch)
        bucketed = run_once(keys, args.records, args.batch, args.buckets, epoch)
        print(f"{keys:>8} {per_key:>9.2f} {bucketed:>12.2f} {per_key / bucketed:>5.2f}x")
        results.append({"keys": keys, "per_key_us": per_key, "bucketed_us": bucketed})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
