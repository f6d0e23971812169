"""Versioned SQL migrations: `agora migrate` applies what each database lacks.

Files are `stores/migrations/<kind>/<NNN>_<name>.sql`; kind `identity` goes to the
identity database, kind `shard` to every post shard. Each file runs once, in a
transaction, recorded in `schema_migrations`. CQL files (`migrations/cql/*.cql`) go to
the comment keyspace (see `stores/cql.py`). Then the readers' vote index in Redis is
brought in line with the voters hashes (`stores/reader_votes.py`).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import asyncpg

from stores import cql
from stores.reader_votes import reindex
from stores.redis_store import sync_client
from stores.settings import Settings, get_settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "stores" / "migrations"


def migration_files(kind: str) -> list[tuple[int, Path]]:
    files = []
    for path in sorted((MIGRATIONS / kind).glob("*.sql")):
        files.append((int(path.name.split("_", 1)[0]), path))
    return files


async def migrate_database(dsn: str, kind: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    applied: list[int] = []
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        # One migrator at a time per database.
        await conn.execute("SELECT pg_advisory_lock(7431)")
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, path in migration_files(kind):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    version,
                    path.name,
                )
            applied.append(version)
        await conn.execute("SELECT pg_advisory_unlock(7431)")
    finally:
        await conn.close()
    return applied


def _index_reader_votes(settings: Settings) -> int:
    client = sync_client(settings.redis_url)
    try:
        return reindex(client)
    finally:
        client.close()


async def migrate_all(settings: Settings, shard_dbs: tuple[str, ...] | None = None) -> None:
    if shard_dbs is None:
        from stores.placement import shard_names

        # Every shard of the placement, which lives in the identity database: that first.
        applied = await migrate_database(settings.dsn(settings.identity_db), "identity")
        if applied:
            print(f"migrate {settings.identity_db} (identity): applied {applied}")
        shard_dbs = await shard_names(settings)
    targets = [(settings.identity_db, "identity")]
    targets += [(db, "shard") for db in (shard_dbs or settings.shard_dbs)]
    for database, kind in targets:
        applied = await migrate_database(settings.dsn(database), kind)
        print(
            f"migrate {database} ({kind}): {'applied ' + str(applied) if applied else 'up to date'}"
        )
    applied = await asyncio.to_thread(cql.migrate, settings)
    outcome = f"applied {applied}" if applied else "up to date"
    print(f"migrate {settings.cql_keyspace} (cql): {outcome}")
    changed = await asyncio.to_thread(_index_reader_votes, settings)
    print(f"migrate redis (readers' vote index): {changed} entries written or dropped")
    if settings.email_encryption_key and settings.email_hash_key:
        from stores.pii import EmailVault
        from stores.users import seal_plain_emails

        pool = await asyncpg.create_pool(settings.dsn(settings.identity_db), min_size=1, max_size=2)
        try:
            vault = EmailVault(settings.email_encryption_key, settings.email_hash_key)
            sealed = await seal_plain_emails(pool, vault)
        finally:
            await pool.close()
        if sealed:
            print(f"emails sealed: {sealed}")
    if settings.s3_endpoint or settings.s3_access_key:
        from stores.objects import ensure_bucket

        created = await asyncio.to_thread(ensure_bucket, settings)
        print(f"bucket {settings.s3_bucket}: {'created' if created else 'present'}, public-read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shard", action="append", help="only these shard databases")
    args = parser.parse_args()
    settings = get_settings()
    asyncio.run(migrate_all(settings, tuple(args.shard) if args.shard else None))


if __name__ == "__main__":
    main()
