"""Shard tables as the rebalance sees them: discovered from the catalog (every table
with a community_id, or a post_id that carries it), copied and deleted per community
with idempotent merges, so tables added to the shard schema later move too."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

BOOKKEEPING = frozenset({"schema_migrations"})
CHUNK_ROWS = 5000
STAGING = "rebalance_rows"


class UnmovableTable(ValueError):
    """A shard table whose rows cannot be merged idempotently (or an FK cycle)."""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class ShardTable:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    community: str  # SQL expression of a row's community id
    parents: tuple[str, ...] = ()

    def _cols(self) -> str:
        return ", ".join(quote(c) for c in self.columns)

    def select_sql(self) -> str:
        return f"SELECT {self._cols()} FROM {quote(self.name)} WHERE {self.community} = ANY($1)"

    def count_sql(self) -> str:
        return (
            f"SELECT {self.community} AS community_id, count(*) AS n FROM {quote(self.name)}"
            f" WHERE {self.community} = ANY($1) GROUP BY 1"
        )

    def take_sql(self) -> str:
        t = quote(self.name)
        return (
            f"DELETE FROM {t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {t}"
            f" WHERE {self.community} = ANY($1) LIMIT {CHUNK_ROWS})) RETURNING {self._cols()}"
        )

    def communities_sql(self) -> str:
        return f"SELECT DISTINCT {self.community} AS community_id FROM {quote(self.name)}"

    def merge_sql(self, source: str) -> str:
        """Idempotent: an existing row stays, unless the table has a sequence column
        (`seq`, `rank_seq`, ...) and the incoming row's is higher: the writers' own rule."""
        t, cols = quote(self.name), self._cols()
        conflict = ", ".join(quote(k) for k in self.key)
        head = f"INSERT INTO {t} ({cols}) SELECT {cols} FROM {source} ON CONFLICT ({conflict})"
        updates = [c for c in self.columns if c not in self.key]
        seq = sequence_column(self.columns)
        if seq is None or not updates:
            return f"{head} DO NOTHING"
        sets = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in updates)
        return f"{head} DO UPDATE SET {sets} WHERE {t}.{quote(seq)} < EXCLUDED.{quote(seq)}"


def sequence_column(columns: Sequence[str]) -> str | None:
    """The column that orders a row's versions: `seq`, else the one `*_seq` column."""
    if "seq" in columns:
        return "seq"
    named = [c for c in columns if c.endswith("_seq")]
    return named[0] if len(named) == 1 else None


def community_expression(columns: Sequence[str]) -> str | None:
    """How a row names its community: the column, or the suffix of a post id."""
    if "community_id" in columns:
        return quote("community_id")
    if "post_id" in columns:
        return f"split_part({quote('post_id')}, '-', 2)"
    return None


def parents_first(tables: Iterable[ShardTable]) -> list[ShardTable]:
    """Foreign-key order: a referenced table is copied before the tables referencing it."""
    pending = {t.name: t for t in tables}
    ordered: list[ShardTable] = []
    while pending:
        ready = [t for t in pending.values() if not set(t.parents) & set(pending) - {t.name}]
        if not ready:
            raise UnmovableTable(f"foreign keys form a cycle among {sorted(pending)}")
        for t in sorted(ready, key=lambda t: t.name):
            ordered.append(pending.pop(t.name))
    return ordered


async def discover_tables(conn: asyncpg.Connection) -> tuple[list[ShardTable], list[str]]:
    """Tables to move (parents first) and the names of the ones left alone."""
    columns = await conn.fetch(
        "SELECT c.table_name::text AS name,"
        " array_agg(c.column_name::text ORDER BY c.ordinal_position) AS columns"
        " FROM information_schema.columns c JOIN information_schema.tables t"
        " ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
        " WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
        " AND c.is_generated = 'NEVER' GROUP BY c.table_name"
    )
    keys = await conn.fetch(
        "SELECT t.relname::text AS name, array_agg(a.attname::text ORDER BY k.ord) AS key"
        " FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace"
        " CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
        " WHERE i.indisprimary AND n.nspname = current_schema() GROUP BY t.relname"
    )
    refs = await conn.fetch(
        "SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent"
        " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE c.contype = 'f' AND n.nspname = current_schema()"
    )
    key_of = {r["name"]: tuple(r["key"]) for r in keys}
    parents: dict[str, list[str]] = defaultdict(list)
    for r in refs:
        parents[r["child"].strip('"')].append(r["parent"].strip('"'))
    tables, skipped = [], []
    for r in columns:
        name, cols = r["name"], tuple(r["columns"])
        expression = community_expression(cols)
        if name in BOOKKEEPING or expression is None:
            skipped.append(name)
            continue
        if name not in key_of:
            raise UnmovableTable(f"shard table {name} has no primary key: rows cannot merge")
        tables.append(ShardTable(name, cols, key_of[name], expression, tuple(parents[name])))
    return parents_first(tables), sorted(skipped)


async def merge_rows(dst: asyncpg.Connection, table: ShardTable, rows: list[tuple]) -> None:
    async with dst.transaction():
        await dst.execute(f"CREATE TEMP TABLE {STAGING} (LIKE {quote(table.name)}) ON COMMIT DROP")
        await dst.copy_records_to_table(STAGING, records=rows, columns=list(table.columns))
        await dst.execute(table.merge_sql(STAGING))


async def copy_rows(
    src: asyncpg.Connection, dst: asyncpg.Connection, table: ShardTable, communities: list[str]
) -> int:
    copied = 0
    chunk: list[tuple] = []
    async with src.transaction(isolation="repeatable_read", readonly=True):
        async for record in src.cursor(table.select_sql(), communities, prefetch=CHUNK_ROWS):
            chunk.append(tuple(record))
            if len(chunk) >= CHUNK_ROWS:
                await merge_rows(dst, table, chunk)
                copied += len(chunk)
                chunk = []
    if chunk:
        await merge_rows(dst, table, chunk)
        copied += len(chunk)
    return copied


async def take_rows(
    src: asyncpg.Connection, dst: asyncpg.Connection, table: ShardTable, communities: list[str]
) -> int:
    """Delete the communities' rows from `src`, merging each chunk into `dst` first."""
    taken = 0
    while True:
        async with src.transaction():
            rows = await src.fetch(table.take_sql(), communities)
            if rows:
                await merge_rows(dst, table, [tuple(r) for r in rows])
        taken += len(rows)
        if len(rows) < CHUNK_ROWS:
            return taken


async def count_rows(
    conn: asyncpg.Connection, table: ShardTable, communities: list[str]
) -> dict[str, int]:
    return {r["community_id"]: r["n"] for r in await conn.fetch(table.count_sql(), communities)}
