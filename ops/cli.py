"""`agora`: the operator's one command for the local stack, the platform's processes,
the dataflows, the databases and the shards. `agora --help` lists everything;
every command has its own `--help`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from dataflows.bootstrap import JOBS
from ops import migrate as migrations
from ops import shards as shard_ops
from ops import status as dataflow_status
from schemas.topics import BY_NAME
from stores.kafka_admin import end_offsets, ensure_topics
from stores.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
stack = typer.Typer(help="The local servers: Postgres, Redis, Kafka, Cassandra, ...")
platform = typer.Typer(help="The platform's processes under supervisord.")
dataflow = typer.Typer(help="Run, replay, backfill and inspect dataflows.", no_args_is_help=True)
shards = typer.Typer(help="The post shard ring: status, add, remove, sweep.", no_args_is_help=True)
topics = typer.Typer(help="The Kafka topic catalog.", no_args_is_help=True)
rebuild = typer.Typer(help="Rebuild read models from their sources.", no_args_is_help=True)
seed = typer.Typer(help="Load demo or workload data through the API.", no_args_is_help=True)
for sub, name in (
    (stack, "stack"),
    (platform, "platform"),
    (dataflow, "dataflow"),
    (shards, "shards"),
    (topics, "topics"),
    (rebuild, "rebuild"),
    (seed, "seed"),
):
    app.add_typer(sub, name=name)

Name = Annotated[str, typer.Argument(help=f"one of: {', '.join(sorted(JOBS))}")]


def _known(name: str) -> str:
    if name not in JOBS:
        raise typer.BadParameter(f"unknown dataflow {name!r} (one of: {', '.join(sorted(JOBS))})")
    return name


def _script(script: str, *args: str) -> None:
    """Run one of the deploy scripts, passing its exit code on."""
    code = subprocess.call(["bash", str(ROOT / "deploy" / script), *args], cwd=ROOT)
    raise typer.Exit(code)


def _python(*args: str) -> None:
    """Replace this process with `python -m ...` (signals and exit code go straight through)."""
    os.execvp(sys.executable, [sys.executable, *args])  # noqa: S606 - a fixed interpreter


# -- stack and platform ------------------------------------------------------------


@stack.command("up")
def stack_up() -> None:
    """Install what is missing, start every server, wait until each is ready."""
    _script("stack.sh", "up")


@stack.command("down")
def stack_down() -> None:
    """Stop every server this state folder started."""
    _script("stack.sh", "down")


@stack.command("status")
def stack_status() -> None:
    """Each server: up or down, PID, address."""
    _script("stack.sh", "status")


@stack.command("stop")
def stack_stop(service: str) -> None:
    """Stop one server (for fault drills)."""
    _script("stack.sh", "stop", service)


@stack.command("start")
def stack_start(service: str) -> None:
    """Start one server and wait until it is ready."""
    _script("stack.sh", "start", service)


@platform.command("up")
def platform_up() -> None:
    """Migrate, create topics, start the API, push server, relay and every dataflow."""
    _script("platform.sh", "up")


@platform.command("down")
def platform_down() -> None:
    """Stop the platform's processes and their supervisor."""
    _script("platform.sh", "down")


@platform.command("status")
def platform_status() -> None:
    """Each process: state, PID, uptime and restart count; crash loops are named."""
    _script("platform.sh", "status")


# -- databases and topics -----------------------------------------------------------


@app.command("migrate")
def migrate(
    shard: Annotated[list[str] | None, typer.Option(help="only these shard databases")] = None,
) -> None:
    """Apply the SQL and CQL migrations each database lacks."""
    asyncio.run(migrations.migrate_all(get_settings(), tuple(shard) if shard else None))


@topics.command("ensure")
def topics_ensure() -> None:
    """Create the topics of the catalog that are missing."""
    created = ensure_topics(get_settings().kafka_bootstrap)
    typer.echo(f"topics created: {', '.join(created) if created else 'none (all present)'}")


@topics.command("offsets")
def topics_offsets(topic: Annotated[str | None, typer.Option()] = None) -> None:
    """The end offset of every partition."""
    bootstrap = get_settings().kafka_bootstrap
    for name in [topic] if topic else sorted(BY_NAME):
        typer.echo(f"{name} {end_offsets(bootstrap, name)}")


# -- dataflows ---------------------------------------------------------------------


@dataflow.command("list")
def dataflow_list() -> None:
    """The dataflows and the topics each reads."""
    for name, job in sorted(JOBS.items()):
        typer.echo(f"{name:<10} reads {', '.join(job.topics)}")


@dataflow.command("run")
def dataflow_run(
    name: Name,
    workers: Annotated[int, typer.Option("-w", "--workers", help="workers per process")] = 1,
    process_id: Annotated[int | None, typer.Option("-i", "--process-id")] = None,
    addresses: Annotated[str | None, typer.Option("-a", "--addresses")] = None,
) -> None:
    """Run a dataflow with recovery on (resumes from its last snapshot)."""
    args = ["-m", "dataflows", "run", _known(name), "-w", str(workers)]
    if process_id is not None:
        args += ["-i", str(process_id)]
    if addresses:
        args += ["-a", addresses]
    _python(*args)


@dataflow.command("replay")
def dataflow_replay(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    workers: Annotated[int, typer.Option("-w", "--workers")] = 1,
) -> None:
    """Wipe what NAME derived and rebuild it from offset 0 (with a progress bar)."""
    args = ["-m", "dataflows", "replay", _known(name), "-w", str(workers)]
    _python(*args, *(["--yes"] if yes else []))


@dataflow.command("backfill")
def dataflow_backfill(
    name: Name,
    since: Annotated[
        datetime | None, typer.Option(help="re-read records appended since this time (UTC)")
    ] = None,
    offset: Annotated[int | None, typer.Option(help="re-read every partition from here")] = None,
) -> None:
    """Re-read part of the log into NAME's views without wiping them (stateless ones)."""
    _python(
        "-m",
        "dataflows",
        "backfill",
        _known(name),
        *(["--since", since.isoformat()] if since else []),
        *(["--offset", str(offset)] if offset is not None else []),
    )


@dataflow.command("status")
def dataflow_status_cmd(
    name: Annotated[str | None, typer.Argument(help="one dataflow (default: all)")] = None,
    sample: Annotated[float, typer.Option(help="seconds to measure events/s over")] = 5.0,
) -> None:
    """Per dataflow and partition: committed position, log end, lag, events/s, dead letters."""
    settings = get_settings()
    names = [_known(name)] if name else sorted(JOBS)

    def read() -> list[dataflow_status.PartitionStatus]:
        return [
            row
            for n in names
            for row in dataflow_status.partition_status(
                settings.kafka_bootstrap, settings.recovery_root / n, n, JOBS[n].topics
            )
        ]

    first = read()
    rows = first
    if sample > 0:
        time.sleep(sample)
        rows = dataflow_status.with_rates(first, read(), sample)
    letters = dataflow_status.dead_letter_counts(settings.kafka_bootstrap)
    typer.echo(dataflow_status.format_rows(rows, letters))


@dataflow.command("dead-letters")
def dataflow_dead_letters(
    name: Annotated[str | None, typer.Option("--dataflow", help="only this dataflow's")] = None,
) -> None:
    """Dead letters, one per dataflow and record, with the reason."""
    _python("-m", "dataflows", "dead-letters", *(["--dataflow", _known(name)] if name else []))


@dataflow.command("republish")
def dataflow_republish(
    refs: Annotated[list[str] | None, typer.Argument(help="topic:partition:offset")] = None,
    all_of: Annotated[
        str | None, typer.Option("--all-of", help="every dead letter of this dataflow")
    ] = None,
) -> None:
    """Copy dead-lettered records to the end of their topics (after fixing the cause)."""
    if all_of:
        _python("-m", "dataflows", "dead-letters", "--republish", "--all", "--dataflow", all_of)
    if not refs:
        raise typer.BadParameter("name records (topic:partition:offset) or --all-of DATAFLOW")
    _python("-m", "dataflows", "dead-letters", "--republish", *refs)


@rebuild.command("rankings")
def rebuild_rankings() -> None:
    """Rebuild Redis listings, views, vote markers and pins from the shards."""
    _python("-m", "dataflows", "rebuild-rankings")


# -- shards ------------------------------------------------------------------------

ShardName = Annotated[str, typer.Argument(help="shard database name, e.g. posts_shard_2")]


@shards.command("status")
def shards_status(
    verify: Annotated[bool, typer.Option(help="count rows per shard")] = False,
) -> None:
    """The ring, each shard's state, a move in progress, the processes' views."""
    raise typer.Exit(shard_ops.main(["status", *(["--verify"] if verify else [])]))


@shards.command("add")
def shards_add(
    name: ShardName,
    batch_size: Annotated[int, typer.Option(help="communities per range")] = 200,
    pause: Annotated[float, typer.Option(help="seconds between ranges")] = 0.0,
) -> None:
    """Add a shard and move its communities onto it online (resumable)."""
    raise typer.Exit(
        shard_ops.main(["add-shard", name, "--batch-size", str(batch_size), "--pause", str(pause)])
    )


@shards.command("remove")
def shards_remove(
    name: ShardName,
    batch_size: Annotated[int, typer.Option()] = 200,
    pause: Annotated[float, typer.Option()] = 0.0,
) -> None:
    """Move a shard's communities away and take it out of the ring (resumable)."""
    raise typer.Exit(
        shard_ops.main(
            ["remove-shard", name, "--batch-size", str(batch_size), "--pause", str(pause)]
        )
    )


@shards.command("sweep")
def shards_sweep() -> None:
    """Relocate rows found off the shard the ring names (normally none)."""
    raise typer.Exit(shard_ops.main(["sweep"]))


# -- data --------------------------------------------------------------------------


@seed.command("demo")
def seed_demo(base: Annotated[str, typer.Argument()] = "http://127.0.0.1:8000") -> None:
    """A demo community with posts, votes and a comment thread (idempotent)."""
    _python(str(ROOT / "deploy" / "demo.py"), base)


@seed.command(
    "workload",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def seed_workload(ctx: typer.Context) -> None:
    """The seeded, reproducible workload (ordinary users, spammers, vote rings) through
    the API: every option of `python -m benchmarks.workload --help` passes through, e.g.
    `agora seed workload --seed 7 --users 200 --api http://127.0.0.1:8000 --speed 4`."""
    _python("-m", "benchmarks.workload", *ctx.args)


def main() -> None:
    app(prog_name="agora")


if __name__ == "__main__":
    main()
