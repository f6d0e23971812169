"""Operate dataflows.

  python -m dataflows run NAME [-w N] [-i I -a ADDRS]   run with recovery on
  python -m dataflows replay NAME [-w N] [--yes]        wipe NAME's derived state and
                                                        rebuild it from offset 0
  python -m dataflows backfill NAME (--since TIME | --offset N)
                                                        re-read part of the log into
                                                        NAME's views (stateless ones)
  python -m dataflows rebuild-rankings                 rebuild Redis listings from shards
  python -m dataflows list
  python -m dataflows dead-letters [--dataflow NAME]   list dead letters with reasons
  python -m dataflows dead-letters --republish REF...  re-publish records (after a fix)
                                                        REF: topic:partition:offset,
                                                        or --all with --dataflow NAME

`run` keeps its recovery store under `<state>/recovery/NAME` (created on first run) and
resumes from its last snapshot. `replay` deletes that store and the state NAME
derives, runs the log from the start to its current end with a progress bar, and
leaves a recovery store from which the next `run` continues.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main
from tqdm import tqdm

from dataflows import common, dead_letters, rebuild
from dataflows.bootstrap import JOBS, Job, build
from observability import logs, metrics, tracing
from observability.heap import HeapKeeper, time_collections
from stores.kafka_admin import end_offsets, offsets_for_time, partition_starts
from stores.settings import Settings, get_settings

RECOVERY_PARTITIONS = 4


def recovery_dir(settings: Settings, name: str) -> Path:
    return settings.recovery_root / name


def ensure_recovery(path: Path) -> None:
    if not any(path.glob("part-*.sqlite3")):
        path.mkdir(parents=True, exist_ok=True)
        init_db_dir(path, RECOVERY_PARTITIONS)


def execute(flow: Dataflow, args: argparse.Namespace, recovery: Path) -> None:
    addresses = args.addresses.split(";") if args.addresses else None
    cli_main(
        flow,
        workers_per_process=args.workers,
        process_id=args.process_id,
        addresses=addresses,
        epoch_interval=timedelta(seconds=args.snapshot_seconds),
        recovery_config=RecoveryConfig(str(recovery)),
    )


def epoch_seconds(given: int | None, settings: Settings, job: Job) -> int:
    """The flow's epoch: as given on the command line, else the settings' epoch but at
    least the flow's own floor (see `Job.min_snapshot_seconds`)."""
    if given is not None:
        return given
    return max(settings.dataflow_snapshot_seconds, job.min_snapshot_seconds)


def log_size(settings: Settings, topics: tuple[str, ...]) -> int:
    return sum(sum(end_offsets(settings.kafka_bootstrap, t).values()) for t in topics)


def show_progress(total: int, done: threading.Event) -> None:
    with tqdm(total=total, unit="event", desc="replay", file=sys.stderr) as bar:
        while not done.is_set():
            bar.update(min(common.PROGRESS.count, total) - bar.n)
            done.wait(0.25)
        bar.update(total - bar.n)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dataflows",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        choices=["run", "replay", "backfill", "rebuild-rankings", "list", "dead-letters"],
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("METRICS_PORT", "0")),
        help="serve /metrics on this port (loopback); env METRICS_PORT",
    )
    parser.add_argument("--since", type=datetime.fromisoformat, help="backfill from this time")
    parser.add_argument("--offset", type=int, help="backfill every partition from this offset")
    parser.add_argument("name", nargs="?", choices=sorted(JOBS))
    parser.add_argument("--dataflow", choices=sorted(JOBS), help="dead letters of one dataflow")
    parser.add_argument(
        "--republish", nargs="*", metavar="REF", help="re-publish records topic:partition:offset"
    )
    parser.add_argument("--all", action="store_true", help="with --republish: every listed one")
    parser.add_argument("-w", "--workers", type=int, default=1, help="workers per process")
    parser.add_argument("-i", "--process-id", type=int, default=None)
    parser.add_argument("-a", "--addresses", default=None, help="host:port;host:port")
    parser.add_argument(
        "-s",
        "--snapshot-seconds",
        type=int,
        default=None,
        help="seconds per epoch: how often state is snapshotted (and at most how much a"
        " resume reads again); default DATAFLOW_SNAPSHOT_SECONDS, else 5 (30 for spam)",
    )
    parser.add_argument("--yes", action="store_true", help="replay without asking")
    args = parser.parse_args()
    if args.command == "list":
        print("\n".join(sorted(JOBS)))
        return
    if args.command == "dead-letters":
        sys.exit(dead_letter_command(args))
    if args.command == "rebuild-rankings":
        rebuild.main(get_settings())
        return
    if args.name is None:
        parser.error("name a dataflow")
    logs.configure(f"dataflow:{args.name}")
    tracing.configure(f"dataflow:{args.name}")
    settings = get_settings()
    job = JOBS[args.name]
    args.snapshot_seconds = epoch_seconds(args.snapshot_seconds, settings, job)
    recovery = recovery_dir(settings, args.name)
    time_collections()
    HeapKeeper(
        settings.dataflow_gc_freeze_seconds,
        settings.dataflow_gc_full_seconds,
        settings.gc_young_threshold,
    ).start()
    if args.command == "run":
        if args.metrics_port:
            metrics.serve(args.metrics_port)
        ensure_recovery(recovery)
        execute(build(args.name, settings, tail=True), args, recovery)
        return
    if args.command == "backfill":
        backfill(parser, args, settings)
        return
    if not args.yes and sys.stdin.isatty():
        answer = input(f"wipe everything {args.name} derived and rebuild it? [y/N] ")
        if answer.strip().lower() != "y":
            sys.exit(1)
    total = log_size(settings, job.topics)
    started = time.monotonic()
    shutil.rmtree(recovery, ignore_errors=True)
    job.wipe(settings)
    ensure_recovery(recovery)
    done = threading.Event()
    progress = threading.Thread(target=show_progress, args=(total, done), daemon=True)
    progress.start()
    try:
        execute(build(args.name, settings, tail=False, replay=True), args, recovery)
    finally:
        done.set()
        progress.join()
    if job.after_replay is not None:
        job.after_replay(settings)
    print(f"replayed {args.name}: {total} events in {time.monotonic() - started:.1f}s")


def backfill(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> None:
    """Re-read the log from a time or offset to its current end into the dataflow's
    views, next to its running job (own recovery store; sinks are idempotent)."""
    job = JOBS[args.name]
    if not job.backfillable:
        parser.error(f"{args.name} keeps state built from the whole log: use replay")
    if (args.since is None) == (args.offset is None):
        parser.error("backfill needs exactly one of --since or --offset")
    bootstrap = settings.kafka_bootstrap
    if args.since is not None:
        since = args.since if args.since.tzinfo else args.since.replace(tzinfo=UTC)
        starts = offsets_for_time(bootstrap, job.topics, since)
    else:
        starts = partition_starts(bootstrap, job.topics, args.offset)
    ends = {t: end_offsets(bootstrap, t) for t in job.topics}
    total = sum(
        max(0, ends[topic][int(part)] - start)
        for key, start in starts.items()
        for part, _, topic in [key.partition("-")]
    )
    with tempfile.TemporaryDirectory(prefix=f"backfill-{args.name}-") as tmp:
        recovery = Path(tmp)
        ensure_recovery(recovery)
        done = threading.Event()
        progress = threading.Thread(target=show_progress, args=(total, done), daemon=True)
        progress.start()
        try:
            execute(build(args.name, settings, tail=False, starts=starts), args, recovery)
        finally:
            done.set()
            progress.join()
    print(f"backfilled {args.name}: {total} events")


def dead_letter_command(args: argparse.Namespace) -> int:
    bootstrap = get_settings().kafka_bootstrap
    if args.republish is None:
        listed = dead_letters.list_letters(bootstrap, args.dataflow)
        for item in listed:
            d = item.letter
            repeats = f" (recorded {item.recorded}x)" if item.recorded > 1 else ""
            print(f"{d.dataflow:<9} {item.ref}  {d.reason}{repeats}")
        print(f"{len(listed)} dead letter(s)", file=sys.stderr)
        return 0
    if args.all:
        if args.dataflow is None:
            print("--all needs --dataflow NAME", file=sys.stderr)
            return 2
        refs = [i.ref for i in dead_letters.list_letters(bootstrap, args.dataflow)]
    else:
        try:
            refs = [dead_letters.parse_ref(r) for r in args.republish]
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    copied = dead_letters.republish(bootstrap, refs)
    for ref in copied:
        print(f"re-published {ref}")
    missing = set(refs) - set(copied)
    for ref in sorted(missing, key=str):
        print(f"not found: {ref}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    main()
