"""Operate dataflows.

  python -m dataflows run NAME [-w N] [-i I -a ADDRS]   run with recovery on
  python -m dataflows replay NAME [-w N] [--yes]        wipe NAME's derived state and
                                                        rebuild it from offset 0
  python -m dataflows rebuild-rankings                 rebuild Redis listings from shards
  python -m dataflows list

`run` keeps its recovery store under `<state>/recovery/NAME` (created on first run) and
resumes from its last snapshot. `replay` deletes that store and the state NAME
derives, runs the log from the start to its current end with a progress bar, and
leaves a recovery store from which the next `run` continues.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main
from tqdm import tqdm

from dataflows import common, content, karma, mentions, ranking, rebuild, votes
from schemas.topics import COMMENTS, COMMUNITIES, POSTS, SCORES, VOTES
from stores.kafka_admin import end_offsets
from stores.settings import Settings, get_settings

RECOVERY_PARTITIONS = 4


@dataclass(frozen=True)
class Job:
    build: Callable[..., Dataflow]
    wipe: Callable[[Settings], None]
    topics: tuple[str, ...]


JOBS: dict[str, Job] = {
    "content": Job(content.build_flow, content.wipe, (POSTS.name, COMMENTS.name)),
    "votes": Job(votes.build_flow, votes.wipe, (VOTES.name,)),
    "ranking": Job(ranking.build_flow, ranking.wipe, (POSTS.name, SCORES.name, COMMUNITIES.name)),
    "karma": Job(karma.build_flow, karma.wipe, (SCORES.name,)),
    "mentions": Job(mentions.build_flow, mentions.wipe, (POSTS.name, COMMENTS.name)),
}


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
    parser.add_argument("command", choices=["run", "replay", "rebuild-rankings", "list"])
    parser.add_argument("name", nargs="?", choices=sorted(JOBS))
    parser.add_argument("-w", "--workers", type=int, default=1, help="workers per process")
    parser.add_argument("-i", "--process-id", type=int, default=None)
    parser.add_argument("-a", "--addresses", default=None, help="host:port;host:port")
    parser.add_argument("-s", "--snapshot-seconds", type=int, default=2)
    parser.add_argument("--yes", action="store_true", help="replay without asking")
    args = parser.parse_args()
    if args.command == "list":
        print("\n".join(sorted(JOBS)))
        return
    if args.command == "rebuild-rankings":
        rebuild.main(get_settings())
        return
    if args.name is None:
        parser.error("name a dataflow")
    settings = get_settings()
    job = JOBS[args.name]
    recovery = recovery_dir(settings, args.name)
    if args.command == "run":
        ensure_recovery(recovery)
        execute(job.build(tail=True, settings=settings), args, recovery)
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
        execute(job.build(tail=False, settings=settings), args, recovery)
    finally:
        done.set()
        progress.join()
    print(f"replayed {args.name}: {total} events in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
