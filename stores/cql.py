"""CQL adapter (Apache Cassandra locally, ScyllaDB in production): sessions, an asyncio
bridge for the driver's futures, and schema migrations.

The driver is synchronous with its own I/O thread; `fetch` turns its callback
futures into asyncio futures (all pages collected) so Sanic handlers never block.
Migrations are `stores/migrations/cql/<NNN>_<name>.cql` files of `;`-separated
statements, recorded in the keyspace's `schema_migrations` table.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cassandra import (
    ConsistencyLevel,
    OperationTimedOut,
    ReadTimeout,
    Unavailable,
    WriteTimeout,
)
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    ResponseFuture,
    Session,
)
from cassandra.concurrent import execute_concurrent
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import dict_factory, tuple_factory

from stores.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations" / "cql"
# What the driver raises when the store is away or overloaded, not about the request.
UNAVAILABLE: tuple[type[Exception], ...] = (
    NoHostAvailable,
    OperationTimedOut,
    Unavailable,
    ReadTimeout,
    WriteTimeout,
)
LWT = "lwt"  # execution profile for lightweight transactions (rows as dicts)

logging.getLogger("cassandra").setLevel(logging.ERROR)


def connect(settings: Settings, *, keyspace: bool = True) -> tuple[Cluster, Session]:
    """A cluster and a session on the platform keyspace (LOCAL_QUORUM reads and writes)."""

    def profile(row_factory: Any) -> ExecutionProfile:
        return ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            request_timeout=10,
            row_factory=row_factory,
        )

    cluster = Cluster(
        list(settings.cql_hosts),
        port=settings.cql_port,
        execution_profiles={
            EXEC_PROFILE_DEFAULT: profile(tuple_factory),
            LWT: profile(dict_factory),
        },
        connect_timeout=5,
    )
    session = cluster.connect(settings.cql_keyspace if keyspace else None)
    return cluster, session


def fetch(session: Session, statement: Any, params: Sequence[Any] = (), **kwargs: Any) -> Any:
    """Run `statement`; an awaitable of every row (all pages) as the profile's rows."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[list[Any]] = loop.create_future()
    future: ResponseFuture = session.execute_async(statement, params, **kwargs)
    rows: list[Any] = []

    def on_page(page: Iterable[Any]) -> None:
        rows.extend(page)
        if future.has_more_pages:
            future.start_fetching_next_page()
        else:
            loop.call_soon_threadsafe(_settle, done, rows, None)

    def on_error(exc: BaseException) -> None:
        loop.call_soon_threadsafe(_settle, done, None, exc)

    future.add_callbacks(on_page, on_error)
    return done


def _settle(done: asyncio.Future[Any], rows: Any, exc: BaseException | None) -> None:
    if done.done():
        return
    if exc is None:
        done.set_result(rows)
    else:
        done.set_exception(exc)


def execute_many(session: Session, items: Iterable[tuple[Any, Sequence[Any]]]) -> None:
    """Run (statement, params) pairs, up to 128 in flight; raises the first failure."""
    execute_concurrent(session, list(items), concurrency=128, raise_on_first_error=True)


def migration_files() -> list[tuple[int, Path]]:
    return sorted((int(p.name.split("_", 1)[0]), p) for p in MIGRATIONS.glob("*.cql"))


def statements(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def migrate(settings: Settings) -> list[int]:
    """Apply what the keyspace lacks. DDL is `IF NOT EXISTS`, so a rerun is harmless.

    A missing keyspace is created with one replica (the local stack, docker-compose);
    production creates it beforehand with its own replication.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,47}", settings.cql_keyspace):
        raise ValueError(f"invalid keyspace name {settings.cql_keyspace!r}")
    cluster, session = connect(settings, keyspace=False)
    applied: list[int] = []
    try:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {settings.cql_keyspace} WITH replication ="
            " {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.set_keyspace(settings.cql_keyspace)
        session.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY,"
            " name text, applied_at timestamp)"
        )
        done = {row[0] for row in session.execute("SELECT version FROM schema_migrations")}
        for version, path in migration_files():
            if version in done:
                continue
            for statement in statements(path.read_text()):
                session.execute(statement, timeout=60)
            session.execute(
                "INSERT INTO schema_migrations (version, name, applied_at)"
                " VALUES (%s, %s, toTimestamp(now()))",
                (version, path.name),
            )
            applied.append(version)
    finally:
        cluster.shutdown()
    return applied


def truncate(settings: Settings, tables: Iterable[str]) -> None:
    """Empty tables (replay); names come from code, never from input."""
    cluster, session = connect(settings)
    try:
        for table in tables:
            session.execute(f"TRUNCATE {table}", timeout=60)
    finally:
        cluster.shutdown()
