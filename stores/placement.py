"""Where a community's posts live: the ring of active shards plus the move in progress.

Every process that routes to a post shard (the API's `ShardRouter`, the dataflow
sinks' `ShardConnections`) asks a `PlacementView`. The view is loaded from the
identity database (`shards`, `shard_placement`), so a rebalance's flip reaches every
process without a restart: `agora shards` bumps the placement version
and NOTIFYs channel `shard_placement`; each process reloads within milliseconds, or
within `POLL_SECONDS` if a notification is missed, and reports the version it uses in
`placement_observers`. The rebalance moves on only once every observer seen in the
last `OBSERVER_EXPIRY_SECONDS` reports the new version.

During a move, communities are handled in ascending id ranges (see `Move`): ids below
the range route by the new ring, the range itself is read from the old shard and
written to both (phase `moving`), ids above it stay on the old shard.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import asyncpg

from stores.ring import ShardRing
from stores.settings import Settings

log = logging.getLogger(__name__)

Phase = Literal["pinned", "moving", "flipped"]
Region = Literal["old", "moving", "new"]

CHANNEL = "shard_placement"
POLL_SECONDS = 0.5  # fallback when a NOTIFY is missed: the staleness bound of a view
HEARTBEAT_SECONDS = 2.0  # an unchanged version is re-reported this often
WRITER_LEASE_SECONDS = 5.0  # a writer never routes with a view unconfirmed for longer
REFRESH_TIMEOUT_SECONDS = 15.0  # a refresh stuck this long is dropped with its connection
OBSERVER_EXPIRY_SECONDS = 15.0  # observers silent for longer no longer hold a move back
MISSING = "the shard placement tables are missing: run `agora migrate`"


@dataclass(frozen=True)
class Move:
    """A ring change in progress, handled in ascending community id ranges.

    Ids below `lo` are done (new ring). In phase `moving`, ids in [lo, hi) are read
    from the old owner and written to both owners; in phase `flipped` ids below `hi`
    use the new ring and [lo, hi) still has old copies to delete. `hi` None is no
    upper bound. Everything else is `pinned` to its old owner.
    """

    operation: str
    old_ring: tuple[str, ...]
    new_ring: tuple[str, ...]
    phase: Phase
    lo: str = ""
    hi: str | None = None

    def region(self, community_id: str) -> Region:
        if community_id < self.lo:
            return "new"
        if self.phase == "pinned" or (self.hi is not None and community_id >= self.hi):
            return "old"
        return "moving" if self.phase == "moving" else "new"


@dataclass(frozen=True)
class PlacementView:
    """An immutable routing table: `shard_for` for reads, `write_shards` for writers."""

    version: int
    ring: tuple[str, ...]
    move: Move | None = None
    vnodes: int = 40

    @cached_property
    def _rings(self) -> tuple[ShardRing, ShardRing]:
        if self.move is None:
            ring = ShardRing(self.ring, self.vnodes)
            return ring, ring
        return (
            ShardRing(self.move.old_ring, self.vnodes),
            ShardRing(self.move.new_ring, self.vnodes),
        )

    @property
    def shards(self) -> tuple[str, ...]:
        """Every shard this view can route to (pools and connections to hold)."""
        names = list(self.ring)
        if self.move is not None:
            names += [*self.move.old_ring, *self.move.new_ring]
        return tuple(dict.fromkeys(names))

    def owners(self, community_id: str) -> tuple[str, str]:
        """(old, new) owner: equal unless a move relocates the community."""
        old, new = self._rings
        return old.shard_for(community_id), new.shard_for(community_id)

    def shard_for(self, community_id: str) -> str:
        old, new = self.owners(community_id)
        if old == new or self.move is None:
            return old
        return new if self.move.region(community_id) == "new" else old

    def write_shards(self, community_id: str) -> tuple[str, ...]:
        """Where a write must go: both owners while the community is being copied.

        The new owner comes first, so a row on the old shard is already on the new one.
        """
        old, new = self.owners(community_id)
        if old == new or self.move is None:
            return (old,)
        region = self.move.region(community_id)
        if region == "moving":
            return (new, old)
        return (new,) if region == "new" else (old,)


@dataclass(frozen=True)
class Mover:
    community_id: str
    source: str
    target: str


def movers(community_ids: Iterable[str], old: ShardRing, new: ShardRing) -> list[Mover]:
    """Communities whose owner differs between two rings, in ascending id order."""
    out = []
    for community_id in sorted(set(community_ids)):
        source, target = old.shard_for(community_id), new.shard_for(community_id)
        if source != target:
            out.append(Mover(community_id, source, target))
    return out


def in_range(community_id: str, lo: str, hi: str | None) -> bool:
    return community_id >= lo and (hi is None or community_id < hi)


def next_hi(mover_ids: list[str], lo: str, batch_size: int) -> str | None:
    """Upper bound of the next range holding `batch_size` movers from `lo`.

    None (no bound) for the last range, so communities created during the move
    (ids grow with time) are always covered.
    """
    start = bisect.bisect_left(mover_ids, lo)
    if len(mover_ids) - start <= batch_size:
        return None
    return mover_ids[start + batch_size]


# --- the identity database ---------------------------------------------------------


async def seed_shards(conn: asyncpg.Connection, names: Iterable[str]) -> None:
    """First use: the configured shard list (PG_SHARD_DBS) becomes the ring."""
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(7432)")
            if await conn.fetchval("SELECT count(*) FROM shards") == 0:
                await conn.executemany(
                    "INSERT INTO shards (name, state) VALUES ($1, 'active') ON CONFLICT DO NOTHING",
                    [(n,) for n in names],
                )
    except asyncpg.UndefinedTableError:
        raise RuntimeError(MISSING) from None


async def load_view(conn: asyncpg.Connection, vnodes: int = 40) -> PlacementView:
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(
                "SELECT version, operation, old_ring, new_ring, phase, lo, hi FROM shard_placement"
            )
            active = await conn.fetch(
                "SELECT name FROM shards WHERE state = 'active' ORDER BY name"
            )
    except asyncpg.UndefinedTableError:
        row = None
    if row is None:
        raise RuntimeError(MISSING)
    move = None
    if row["operation"] is not None:
        move = Move(
            row["operation"],
            tuple(row["old_ring"]),
            tuple(row["new_ring"]),
            row["phase"],
            row["lo"],
            row["hi"],
        )
    ring = tuple(r["name"] for r in active)
    if not ring:
        raise RuntimeError("no active post shard: seed the ring from PG_SHARD_DBS first")
    return PlacementView(row["version"], ring, move, vnodes)


async def shard_names(settings: Settings) -> tuple[str, ...]:
    """Every shard database in use (not retired), seeding the table on first use."""
    conn = await asyncpg.connect(settings.dsn(settings.identity_db))
    try:
        await seed_shards(conn, settings.shard_dbs)
        rows = await conn.fetch(
            "SELECT name FROM shards WHERE state <> 'retired' ORDER BY added_at, name"
        )
    finally:
        await conn.close()
    return tuple(r["name"] for r in rows)


async def heartbeat(conn: asyncpg.Connection, observer_id: str, role: str, version: int) -> None:
    await conn.execute(
        "INSERT INTO placement_observers (observer_id, role, version) VALUES ($1, $2, $3)"
        " ON CONFLICT (observer_id) DO UPDATE SET version = EXCLUDED.version, seen_at = now()",
        observer_id,
        role,
        version,
    )


async def lagging_observers(
    conn: asyncpg.Connection, version: int, expiry: float = OBSERVER_EXPIRY_SECONDS
) -> list[asyncpg.Record]:
    """Observers seen within `expiry` seconds that still use a version below `version`."""
    return list(
        await conn.fetch(
            "SELECT observer_id, role, version,"
            " extract(epoch FROM now() - seen_at)::float AS age FROM placement_observers"
            " WHERE version < $1 AND seen_at > now() - make_interval(secs => $2)"
            " ORDER BY observer_id",
            version,
            expiry,
        )
    )


def new_observer_id(role: str) -> str:
    return f"{role}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# --- changing the placement (the rebalance command) ----------------------------------


async def _bump(conn: asyncpg.Connection, sets: str, *args: Any) -> int:
    """Change the placement row and its version in one transaction, then NOTIFY."""
    async with conn.transaction():
        version: int = await conn.fetchval(
            f"UPDATE shard_placement SET version = version + 1, updated_at = now(), {sets}"
            " RETURNING version",
            *args,
        )
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(version))
    return version


async def begin_move(
    conn: asyncpg.Connection,
    operation: str,
    old_ring: Sequence[str],
    new_ring: Sequence[str],
    shard: str,
    shard_state: str,
) -> int:
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO shards (name, state) VALUES ($1, $2) ON CONFLICT (name)"
            " DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
            shard,
            shard_state,
        )
        return await _bump(
            conn,
            "operation = $1, old_ring = $2, new_ring = $3, phase = 'pinned', lo = '', hi = NULL,"
            " moved_communities = 0, moved_rows = 0, started_at = now()",
            operation,
            list(old_ring),
            list(new_ring),
        )


async def set_phase(
    conn: asyncpg.Connection,
    phase: str,
    lo: str,
    hi: str | None,
    communities: int = 0,
    rows: int = 0,
) -> int:
    return await _bump(
        conn,
        "phase = $1, lo = $2, hi = $3, moved_communities = moved_communities + $4,"
        " moved_rows = moved_rows + $5",
        phase,
        lo,
        hi,
        communities,
        rows,
    )


async def finish_move(conn: asyncpg.Connection, last_communities: int) -> asyncpg.Record:
    """The new ring becomes the ring; the move goes to the history."""
    async with conn.transaction():
        done = await conn.fetchrow(
            "SELECT operation, started_at, moved_communities + $1 AS moved_communities,"
            " moved_rows,"
            " extract(epoch FROM now() - started_at)::float AS seconds FROM shard_placement"
            " FOR UPDATE",
            last_communities,
        )
        await conn.execute(
            "UPDATE shards SET updated_at = now(), state = CASE state"
            " WHEN 'joining' THEN 'active' ELSE 'retired' END"
            " WHERE state IN ('joining', 'draining')"
        )
        await _bump(
            conn,
            "operation = NULL, old_ring = NULL, new_ring = NULL, phase = NULL, lo = '', hi = NULL",
        )
        await conn.execute(
            "INSERT INTO shard_operations"
            " (operation, started_at, communities, rows_moved, seconds)"
            " VALUES ($1, $2, $3, $4, $5)",
            done["operation"],
            done["started_at"],
            done["moved_communities"],
            done["moved_rows"],
            done["seconds"],
        )
    return done


# --- keeping a process's view current ----------------------------------------------


class PlacementWatcher:
    """Keeps one process's view current (LISTEN + polling) and reports its version.

    `on_change` runs before a new view is adopted (the API opens pools for new shards
    there). With a `gate`, adoption waits until no writer holds it, so a reported
    version means no write routed by an older view is still in flight.
    """

    def __init__(
        self,
        dsn: str,
        role: str,
        *,
        seed: Iterable[str] = (),
        vnodes: int = 40,
        on_change: Callable[[PlacementView], Awaitable[None]] | None = None,
        gate: threading.Lock | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.dsn = dsn
        self.role = role
        self.seed = tuple(seed)
        self.vnodes = vnodes
        self.on_change = on_change
        self.gate = gate
        self.poll_seconds = poll_seconds
        self.observer_id = new_observer_id(role)
        self.confirmed_at = 0.0  # time.monotonic() of the last successful check
        self._view: PlacementView | None = None
        self._conn: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reported = (0, 0.0)  # (version, monotonic time)

    @property
    def view(self) -> PlacementView:
        assert self._view is not None, "start() the watcher first"
        return self._view

    def age(self) -> float:
        return time.monotonic() - self.confirmed_at

    async def start(self) -> PlacementWatcher:
        conn = await self._connect()
        # Processes that died without a goodbye (kill -9) leave rows behind.
        await conn.execute(
            "DELETE FROM placement_observers WHERE seen_at < now() - interval '1 day'"
        )
        await self.refresh()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._conn.execute(
                    "DELETE FROM placement_observers WHERE observer_id = $1", self.observer_id
                )
            await self._conn.close()

    async def _connect(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            conn = await asyncpg.connect(self.dsn)
            if self.seed:
                await seed_shards(conn, self.seed)
            await conn.add_listener(CHANNEL, self._notified)
            self._conn = conn
        return self._conn

    def _notified(self, *_args: Any) -> None:
        self._wake.set()

    async def refresh(self) -> PlacementView:
        """Check the version; adopt a new view if it changed; report what is in use."""
        conn = await self._connect()
        version = await conn.fetchval("SELECT version FROM shard_placement")
        if self._view is None or version != self._view.version:
            view = await load_view(conn, self.vnodes)
            if self.on_change is not None:
                await self.on_change(view)
            self._adopt(view)
        view = self.view
        if view.version != self._reported[0] or time.monotonic() - self._reported[1] > (
            HEARTBEAT_SECONDS
        ):
            await heartbeat(conn, self.observer_id, self.role, view.version)
            self._reported = (view.version, time.monotonic())
        self.confirmed_at = time.monotonic()
        return view

    def _adopt(self, view: PlacementView) -> None:
        if self.gate is None:
            self._view = view
            return
        with self.gate:  # waits for the writer's batch in flight, if any
            self._view = view

    async def _run(self) -> None:
        """Refresh until stopped. Nothing a refresh raises ends the loop (a watcher that
        died would leave its writers unconfirmed for good), and a refresh that hangs on a
        half-dead connection is abandoned after REFRESH_TIMEOUT_SECONDS."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                await asyncio.wait_for(self.refresh(), REFRESH_TIMEOUT_SECONDS)
            except Exception as exc:  # see the docstring; CancelledError still ends it
                log.warning(
                    "placement refresh failed (%s: %s); keeping version %s",
                    type(exc).__name__,
                    exc,
                    self._view,
                )
                if self._conn is not None:
                    self._conn.terminate()
                self._conn = None


class PlacementUnavailable(ConnectionError):
    """The placement could not be confirmed within the writer lease: do not write.

    A connection fault, not a record's: the sink waits it out and writes the same batch.
    """


class ThreadedPlacement:
    """A `PlacementWatcher` on its own thread, for synchronous writers (dataflow sinks).

    Writers route inside `batch()`: it holds the gate, so the view cannot change under
    a batch, and it refuses to hand out a view unconfirmed for `lease` seconds.
    """

    def __init__(
        self,
        dsn: str,
        role: str,
        *,
        seed: Iterable[str] = (),
        vnodes: int = 40,
        lease: float = WRITER_LEASE_SECONDS,
    ) -> None:
        self.gate = threading.Lock()
        self.lease = lease
        self.watcher = PlacementWatcher(dsn, role, seed=seed, vnodes=vnodes, gate=self.gate)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=role)

    def start(self, timeout: float = 30.0) -> ThreadedPlacement:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.watcher.start(), self._loop).result(timeout)
        return self

    @property
    def view(self) -> PlacementView:
        return self.watcher.view

    @contextlib.contextmanager
    def batch(self, timeout: float = 30.0) -> Iterator[PlacementView]:
        deadline = time.monotonic() + timeout
        while True:
            if self.watcher.age() <= self.lease:
                with self.gate:
                    if self.watcher.age() <= self.lease:
                        yield self.watcher.view
                        return
            if time.monotonic() > deadline:
                raise PlacementUnavailable(
                    f"shard placement unconfirmed for {self.watcher.age():.1f}s"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.watcher.stop(), self._loop).result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()
