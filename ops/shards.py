"""Shard operations: grow (or shrink) the post shard ring, moving only the communities
whose owner changes, while the API reads and the dataflows write.

  agora shards add-shard NAME [--batch-size N] [--pause S]
  agora shards remove-shard NAME [--batch-size N] [--pause S]
  agora shards status [--verify]
  agora shards sweep

`add-shard` creates the database if it is missing (CREATE DATABASE when the role may,
else the local stack's `deploy/stack.sh createdb`), migrates it, and starts a move from
the current ring to the ring with NAME. Movers are taken in ascending community id
ranges of `--batch-size`; for each range:

  1. moving   writers write the range to both owners (new first), readers read the old
              one; wait until every placement observer uses this version
  2. copy     every shard table (any table with a community_id, or a post_id that
              carries it) from old to new owner: idempotent merges (DO NOTHING, or
              newer `seq` wins)
  3. verify   row counts per community and table are equal on both owners
  4. flipped  reads and writes go to the new owner; wait for every observer, plus a
              grace for reads already in flight
  5. delete   old copies, merging any straggler row into the new owner first

The last range has no upper bound, so communities created during the move are
covered. Every step is one transaction on the identity database and every copy is
idempotent: after Ctrl-C or kill, re-running the same command resumes where it stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import asyncpg
from tqdm import tqdm

from ops.migrate import migrate_database
from stores.placement import (
    OBSERVER_EXPIRY_SECONDS,
    Move,
    Mover,
    PlacementView,
    begin_move,
    finish_move,
    in_range,
    lagging_observers,
    load_view,
    movers,
    next_hi,
    seed_shards,
    set_phase,
)
from stores.ring import ShardRing
from stores.settings import REPO_ROOT, Settings, get_settings, state_dir
from stores.shard_tables import (
    ShardTable,
    UnmovableTable,
    copy_rows,
    count_rows,
    discover_tables,
    quote,
    take_rows,
)

LOCK_KEY = 7433  # session advisory lock on the identity database: one rebalance at a time
VERIFY_SECONDS = 15.0


class OperationFailed(RuntimeError):
    """The operation cannot go on; the placement is consistent and a re-run resumes."""


async def community_ids(conn: asyncpg.Connection, lo: str = "", hi: str | None = None) -> list[str]:
    rows = await conn.fetch(
        'SELECT community_id FROM communities WHERE community_id COLLATE "C" >= $1'
        ' AND ($2::text IS NULL OR community_id COLLATE "C" < $2)',
        lo,
        hi,
    )
    return [r["community_id"] for r in rows]


# --- the operation ------------------------------------------------------------------


@dataclass
class Options:
    batch_size: int = 200
    pause: float = 0.0
    observer_timeout: float = 120.0
    read_grace: float = 1.0
    progress: bool = True


@dataclass
class Rebalancer:
    settings: Settings
    identity: asyncpg.Connection
    options: Options = field(default_factory=Options)
    conns: dict[str, asyncpg.Connection] = field(default_factory=dict)
    bar: Any = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step kind
    skipped: list[str] = field(default_factory=list)  # shard tables without a community

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[step] = self.timings.get(step, 0.0) + time.monotonic() - started

    async def shard(self, name: str) -> asyncpg.Connection:
        if name not in self.conns:
            self.conns[name] = await asyncpg.connect(self.settings.dsn(name))
        return self.conns[name]

    async def close(self) -> None:
        for conn in self.conns.values():
            await conn.close()

    async def view(self) -> PlacementView:
        return await load_view(self.identity, self.settings.ring_vnodes)

    async def tables(self, shards: Iterable[str]) -> list[ShardTable]:
        """The shard tables, identical on every shard involved (else: migrate first)."""
        found: dict[str, list[ShardTable]] = {}
        for name in shards:
            found[name], self.skipped = await discover_tables(await self.shard(name))
        first, *rest = found.items()
        for name, tables in rest:
            if tables != first[1]:
                raise OperationFailed(
                    f"{name} and {first[0]} have different shard tables: run `agora migrate` first"
                )
        return first[1]

    async def wait_for_observers(self, version: int) -> None:
        """Until every process seen recently routes by `version` (or newer)."""
        deadline = time.monotonic() + self.options.observer_timeout
        while lagging := await lagging_observers(self.identity, version):
            if time.monotonic() > deadline:
                names = ", ".join(f"{r['observer_id']} (v{r['version']})" for r in lagging)
                raise OperationFailed(
                    f"placement version {version} not adopted within "
                    f"{self.options.observer_timeout:.0f}s by {names}; re-run to resume"
                )
            if self.bar is not None:
                self.bar.set_postfix_str(f"waiting for {len(lagging)} process(es)")
            await asyncio.sleep(0.02)

    async def range_movers(
        self, move: Move, tables: list[ShardTable], old: ShardRing, new: ShardRing
    ) -> list[Mover]:
        ids = set(await community_ids(self.identity, move.lo, move.hi))
        if move.hi is None:
            # The open range also takes rows whose community the identity lacks.
            for shard in move.old_ring:
                conn = await self.shard(shard)
                for table in tables:
                    ids |= {r["community_id"] for r in await conn.fetch(table.communities_sql())}
        return movers((c for c in ids if in_range(c, move.lo, move.hi)), old, new)

    async def copy(self, batch: list[Mover], tables: list[ShardTable]) -> int:
        copied = 0
        for (source, target), ids in by_route(batch).items():
            src, dst = await self.shard(source), await self.shard(target)
            for table in tables:
                copied += await copy_rows(src, dst, table, ids)
        return copied

    async def verify(self, batch: list[Mover], tables: list[ShardTable]) -> None:
        """Equal counts per community and table; in-flight dual writes get a moment."""
        for (source, target), ids in by_route(batch).items():
            src, dst = await self.shard(source), await self.shard(target)
            for table in tables:
                deadline = time.monotonic() + VERIFY_SECONDS
                while True:
                    before = await count_rows(src, table, ids)
                    after = await count_rows(dst, table, ids)
                    if before == after:
                        break
                    if time.monotonic() > deadline:
                        diff = {
                            c: (before.get(c, 0), after.get(c, 0))
                            for c in set(before) | set(after)
                            if before.get(c, 0) != after.get(c, 0)
                        }
                        raise OperationFailed(
                            f"{table.name}: counts differ between {source} and {target}"
                            f" (community: (old, new)) {diff}; re-run to copy again"
                        )
                    await asyncio.sleep(0.1)

    async def delete_old(
        self, batch: list[Mover], tables: list[ShardTable], copy_first: bool = False
    ) -> int:
        deleted = 0
        for (source, target), ids in by_route(batch).items():
            src, dst = await self.shard(source), await self.shard(target)
            if copy_first:
                for table in tables:
                    await copy_rows(src, dst, table, ids)
            for table in reversed(tables):  # rows referencing others go first
                deleted += await take_rows(src, dst, table, ids)
        return deleted

    async def run(self) -> asyncpg.Record:
        """Drive the move in progress to its end, from whatever step it stopped at."""
        view = await self.view()
        assert view.move is not None
        first = view.move
        old = ShardRing(first.old_ring, self.settings.ring_vnodes)
        new = ShardRing(first.new_ring, self.settings.ring_vnodes)
        tables = await self.tables(dict.fromkeys([*first.old_ring, *first.new_ring]))
        mover_ids = [m.community_id for m in movers(await community_ids(self.identity), old, new)]
        print(
            f"moving tables {', '.join(t.name for t in tables)}"
            f" (left alone: {', '.join(self.skipped) or 'none'});"
            f" {len(mover_ids)} of the known communities change shard"
        )
        done = bisect.bisect_left(mover_ids, first.lo)
        self.bar = tqdm(
            total=len(mover_ids),
            initial=done,
            unit="community",
            desc=first.operation,
            file=sys.stderr,
            disable=not self.options.progress,
        )
        try:
            with self.timed("wait"):
                await self.wait_for_observers(view.version)
            while True:
                move = (await self.view()).move
                assert move is not None
                if move.phase == "pinned":
                    hi = next_hi(mover_ids, move.lo, self.options.batch_size)
                    version = await set_phase(self.identity, "moving", move.lo, hi)
                    with self.timed("wait"):
                        await self.wait_for_observers(version)
                    continue
                batch = await self.range_movers(move, tables, old, new)
                if move.phase == "moving":
                    with self.timed("copy"):
                        copied = await self.copy(batch, tables)
                    with self.timed("verify"):
                        await self.verify(batch, tables)
                    version = await set_phase(self.identity, "flipped", move.lo, move.hi, 0, copied)
                    with self.timed("wait"):
                        await self.wait_for_observers(version)
                    with self.timed("grace"):
                        await asyncio.sleep(self.options.read_grace)  # reads already in flight
                    continue
                with self.timed("delete"):
                    await self.delete_old(batch, tables)
                self.bar.total = max(self.bar.total, self.bar.n + len(batch))
                self.bar.update(len(batch))
                if move.hi is None:
                    break
                await set_phase(self.identity, "pinned", move.hi, None, len(batch))
                if self.options.pause:
                    await asyncio.sleep(self.options.pause)
            summary = await finish_move(self.identity, len(batch))
            with self.timed("wait"):
                await self.wait_for_observers((await self.view()).version)
            self.bar.set_postfix_str("sweeping")
            with self.timed("sweep"):
                await self.sweep()
            return summary
        finally:
            self.bar.close()
            self.bar = None

    async def sweep(self) -> int:
        """Relocate any row not on the shard the placement names (none, normally)."""
        view = await self.view()
        if view.move is not None:
            raise OperationFailed(f"{view.move.operation} is in progress; finish it first")
        tables = await self.tables(view.ring)
        relocated = 0
        for shard in await self.all_shards():
            conn = await self.shard(shard)
            here = {t.name for t in (await discover_tables(conn))[0]}
            misplaced: set[str] = set()
            for table in (t for t in tables if t.name in here):
                ids = [r["community_id"] for r in await conn.fetch(table.communities_sql())]
                misplaced |= {c for c in ids if view.shard_for(c) != shard}
            batch = [Mover(c, shard, view.shard_for(c)) for c in sorted(misplaced)]
            relocated += await self.delete_old(batch, tables, copy_first=True)
        return relocated

    async def all_shards(self) -> list[str]:
        """Every shard database that still exists, retired ones included."""
        names = []
        for r in await self.identity.fetch("SELECT name FROM shards ORDER BY name"):
            try:
                await self.shard(r["name"])
            except asyncpg.InvalidCatalogNameError:
                continue
            names.append(r["name"])
        return names


def by_route(batch: Iterable[Mover]) -> dict[tuple[str, str], list[str]]:
    routes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for m in batch:
        routes[(m.source, m.target)].append(m.community_id)
    return routes


# --- commands -------------------------------------------------------------------------


async def ensure_database(settings: Settings, identity: asyncpg.Connection, name: str) -> str:
    """Create the shard database if missing: CREATE DATABASE, or the local stack's script."""
    try:
        conn = await asyncpg.connect(settings.dsn(name))
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return "present"
    if await identity.fetchval(
        "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
    ):
        await identity.execute(f"CREATE DATABASE {quote(name)}")
        return "created"
    script = REPO_ROOT / "deploy" / "stack.sh"
    if script.exists() and (state_dir() / "pg").is_dir():
        env = {
            **os.environ,
            "STATE_DIR": str(state_dir()),
            "PG_PORT": str(settings.pg_port),
            "PG_USER": settings.pg_user,
        }
        result = await asyncio.to_thread(
            subprocess.run,
            ["bash", str(script), "createdb", name],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return "created with deploy/stack.sh createdb"
        raise OperationFailed(f"deploy/stack.sh createdb {name} failed: {result.stderr.strip()}")
    raise OperationFailed(
        f"database {name} does not exist and role {settings.pg_user} may not create databases:"
        f" create it (CREATE DATABASE {name} OWNER {settings.pg_user}) and re-run"
    )


async def start_add(rebalancer: Rebalancer, name: str) -> str | None:
    """Prepare and record an add-shard move; None when NAME is already in the ring."""
    settings, identity = rebalancer.settings, rebalancer.identity
    view = await rebalancer.view()
    if name in view.ring:
        return None
    how = await ensure_database(settings, identity, name)
    applied = await migrate_database(settings.dsn(name), "shard")
    print(f"{name}: database {how}, migrations applied: {applied or 'none needed'}")
    tables = await rebalancer.tables([*view.ring, name])
    target = await rebalancer.shard(name)
    for table in tables:
        if await target.fetchval(f"SELECT EXISTS (SELECT FROM {quote(table.name)})"):
            raise OperationFailed(f"{name}.{table.name} holds rows: a joining shard must be empty")
    operation = f"add-shard {name}"
    await begin_move(identity, operation, view.ring, sorted([*view.ring, name]), name, "joining")
    return operation


async def start_remove(rebalancer: Rebalancer, name: str) -> str | None:
    view = await rebalancer.view()
    if name not in view.ring:
        return None
    if len(view.ring) == 1:
        raise OperationFailed(f"{name} is the only shard")
    operation = f"remove-shard {name}"
    new_ring = [s for s in view.ring if s != name]
    await begin_move(rebalancer.identity, operation, view.ring, new_ring, name, "draining")
    return operation


async def change_ring(settings: Settings, command: str, name: str, options: Options) -> int:
    identity = await asyncpg.connect(settings.dsn(settings.identity_db))
    rebalancer = Rebalancer(settings, identity, options)
    try:
        if not await identity.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            raise OperationFailed("another rebalance is running")
        await seed_shards(identity, settings.shard_dbs)
        operation = f"{command} {name}"
        view = await rebalancer.view()
        if view.move is not None and view.move.operation != operation:
            raise OperationFailed(
                f"`{view.move.operation}` is in progress: run it to the end first"
            )
        if view.move is None:
            start = start_add if command == "add-shard" else start_remove
            if await start(rebalancer, name) is None:
                state = "already in" if command == "add-shard" else "not in"
                print(f"{name} is {state} the ring {', '.join(view.ring)}: nothing to move")
                # A re-run after the move ended but before its sweep: sweep now.
                print(f"sweep: relocated {await rebalancer.sweep()} misplaced rows")
                return 0
        else:
            print(f"resuming `{operation}` (phase {view.move.phase}, from {view.move.lo!r})")
        summary = await rebalancer.run()
        seconds = max(summary["seconds"], 1e-9)
        ring = ", ".join((await rebalancer.view()).ring)
        print(
            f"{operation}: moved {summary['moved_communities']} communities"
            f" ({summary['moved_rows']} rows) in {seconds:.1f}s"
            f" ({summary['moved_communities'] / seconds:.1f} communities/s,"
            f" {summary['moved_rows'] / seconds:.0f} rows/s); ring: {ring}"
        )
        steps = ", ".join(f"{k} {v:.2f}s" for k, v in rebalancer.timings.items())
        print(f"time by step (this run): {steps}")
        return 0
    finally:
        await rebalancer.close()
        await identity.close()


async def sweep(settings: Settings) -> int:
    identity = await asyncpg.connect(settings.dsn(settings.identity_db))
    rebalancer = Rebalancer(settings, identity)
    try:
        if not await identity.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            raise OperationFailed("a rebalance is running")
        print(f"relocated {await rebalancer.sweep()} misplaced rows")
        return 0
    finally:
        await rebalancer.close()
        await identity.close()


async def status(settings: Settings, verify: bool) -> int:
    identity = await asyncpg.connect(settings.dsn(settings.identity_db))
    rebalancer = Rebalancer(settings, identity)
    try:
        await seed_shards(identity, settings.shard_dbs)
        view = await rebalancer.view()
        row = await identity.fetchrow("SELECT * FROM shard_placement")
        shards = await identity.fetch("SELECT name, state FROM shards ORDER BY name")
        print(f"placement version {view.version}; ring: {', '.join(view.ring)}")
        print("shards: " + ", ".join(f"{r['name']} ({r['state']})" for r in shards))
        if view.move is None:
            print("operation: none in progress")
        else:
            m = view.move
            print(
                f"operation: {m.operation} since {row['started_at']:%Y-%m-%d %H:%M:%S}, phase"
                f" {m.phase}, range [{m.lo!r}, {m.hi!r}), moved {row['moved_communities']}"
                f" communities ({row['moved_rows']} rows); re-run the command to resume"
            )
        observers = await identity.fetch(
            "SELECT role, version, count(*) AS n FROM placement_observers"
            " WHERE seen_at > now() - make_interval(secs => $1) GROUP BY 1, 2 ORDER BY 1, 2",
            OBSERVER_EXPIRY_SECONDS,
        )
        print(
            "processes: "
            + (", ".join(f"{r['n']} {r['role']} at v{r['version']}" for r in observers) or "none")
        )
        last = await identity.fetch("SELECT * FROM shard_operations ORDER BY id DESC LIMIT 3")
        for r in last:
            print(
                f"done: {r['operation']} at {r['finished_at']:%Y-%m-%d %H:%M:%S}:"
                f" {r['communities']} communities, {r['rows_moved']} rows, {r['seconds']:.1f}s"
            )
        if not verify:
            return 0
        if view.move is not None:
            print("verify: a move is in progress; verify once it ends")
            return 1
        return await verify_placement(rebalancer, view)
    finally:
        await rebalancer.close()
        await identity.close()


async def verify_placement(rebalancer: Rebalancer, view: PlacementView) -> int:
    """Counts rows per shard and table, and the rows not on the shard the ring names."""
    tables = await rebalancer.tables(view.ring)
    misplaced_total = 0
    for shard in await rebalancer.all_shards():
        conn = await rebalancer.shard(shard)
        for table in tables:
            rows = await conn.fetch(
                f"SELECT {table.community} AS community_id, count(*) AS n"
                f" FROM {quote(table.name)} GROUP BY 1"
            )
            total = sum(r["n"] for r in rows)
            misplaced = sum(r["n"] for r in rows if view.shard_for(r["community_id"]) != shard)
            misplaced_total += misplaced
            print(f"verify: {shard}.{table.name}: {total} rows, {misplaced} misplaced")
    return 1 if misplaced_total else 0


def _terminate(_signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="agora shards",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("add-shard", "remove-shard"):
        sub = commands.add_parser(command)
        sub.add_argument("name", help="shard database name, e.g. posts_shard_2")
        sub.add_argument("--batch-size", type=int, default=200, help="communities per range")
        sub.add_argument("--pause", type=float, default=0.0, help="seconds between ranges")
        sub.add_argument("--observer-timeout", type=float, default=120.0)
        sub.add_argument("--read-grace", type=float, default=1.0)
        sub.add_argument("--no-progress", action="store_true")
    commands.add_parser("sweep")
    status_cmd = commands.add_parser("status")
    status_cmd.add_argument("--verify", action="store_true", help="count rows per shard")
    args = parser.parse_args(argv)
    settings = get_settings()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.command == "status":
            return asyncio.run(status(settings, args.verify))
        if args.command == "sweep":
            return asyncio.run(sweep(settings))
        if not args.name.isidentifier() or not args.name.isascii():
            parser.error(f"not a database name: {args.name}")
        options = Options(
            args.batch_size,
            args.pause,
            args.observer_timeout,
            args.read_grace,
            not args.no_progress,
        )
        return asyncio.run(change_ring(settings, args.command, args.name, options))
    except KeyboardInterrupt:
        print(
            "interrupted: the placement is consistent; re-run the same command to resume",
            file=sys.stderr,
        )
        return 130
    except (OperationFailed, UnmovableTable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
