"""Search baselines behind the same Sanic app as the platform (benchmarks only).

`benchmarks.search_app:create_app` serves the platform's API (with `GET /search` on
Meilisearch) plus:
  GET /bench/search/ilike?q=   Lemmy's way: title ILIKE '%q%' OR body ILIKE '%q%',
                               newest first, 25 rows (no typo tolerance, no relevance)
  GET /bench/search/fts?q=     Postgres full-text search: a stored tsvector of title and
                               body with a GIN index, websearch_to_tsquery, ts_rank order
Both read the same posts (table `bench_posts` in database `bench_search`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg
from sanic import Blueprint, HTTPResponse, Request

from api.http import json
from domain.errors import ValidationFailed

BASELINE_DB = "bench_search"

SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_posts (
    post_id text PRIMARY KEY,
    community text NOT NULL,
    author text NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    score integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || to_tsvector('english', body)
    ) STORED
);
"""
GIN = "CREATE INDEX IF NOT EXISTS bench_posts_tsv ON bench_posts USING gin (tsv)"
COLUMNS = "post_id, title, community, author, score, created_at"

bp = Blueprint("search_baseline", url_prefix="/bench/search")


def _q(request: Request) -> str:
    q = (request.args.get("q") or "").strip()
    if not q or len(q) > 256:
        raise ValidationFailed("q is required (at most 256 characters)", {"q": q[:40]})
    return q


@bp.get("/ilike")
async def ilike(request: Request) -> HTTPResponse:
    pattern = "%" + _q(request).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await request.app.ctx.search_db.fetch(
        f"SELECT {COLUMNS} FROM bench_posts WHERE title ILIKE $1 OR body ILIKE $1"
        " ORDER BY created_at DESC LIMIT 25",
        pattern,
    )
    return json({"items": [dict(r) for r in rows], "next_cursor": None})


@bp.get("/fts")
async def fts(request: Request) -> HTTPResponse:
    rows = await request.app.ctx.search_db.fetch(
        f"SELECT {COLUMNS} FROM bench_posts, websearch_to_tsquery('english', $1) query"
        " WHERE tsv @@ query ORDER BY ts_rank(tsv, query) DESC, created_at DESC LIMIT 25",
        _q(request),
    )
    return json({"items": [dict(r) for r in rows], "next_cursor": None})


async def load(
    conn: asyncpg.Connection,
    rows: Iterable[tuple[str, str, str, str, str, int, datetime]],
) -> None:
    """Replace the table's rows with `rows`, then build the GIN index (after the copy,
    as a bulk load would)."""
    await conn.execute("DROP TABLE IF EXISTS bench_posts")
    await conn.execute(SCHEMA)
    await conn.copy_records_to_table(
        "bench_posts",
        records=list(rows),
        columns=["post_id", "community", "author", "title", "body", "score", "created_at"],
    )
    await conn.execute(GIN)
    await conn.execute("ANALYZE bench_posts")
