"""Post shard adapter: the read model the API serves and the upserts the dataflows make."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from domain.errors import NotFound, ValidationFailed
from stores.pg import ShardRouter, truncate_on_shards
from stores.settings import Settings

POST_COLUMNS = (
    "p.post_id, p.community_id, p.community_name, p.author_id, p.author_name,"
    " coalesce(s.title, p.title) AS title, p.kind, coalesce(s.body, p.body) AS body,"
    " coalesce(s.url, p.url) AS url, p.media_id, p.created_at,"
    " p.media_key, p.thumbnail_key,"
    " coalesce(a.upvotes, 0) AS upvotes, coalesce(a.downvotes, 0) AS downvotes,"
    " coalesce(a.score, 0) AS score"
    ", coalesce(cc.comment_count, 0) AS comment_count"
    ", s.edited_at AS edited_at, s.deleted_at AS deleted_at,"
    " coalesce(s.removed, false) AS removed, coalesce(s.locked, false) AS locked,"
    " s.flair AS flair"
)
# What happened to a post after its creation (`post_states`), joined to every read.
STATE_FIELDS = ("edited_at", "deleted_at", "removed", "locked", "flair")
POST_JOINS = (
    " LEFT JOIN post_aggregates a ON a.post_id = p.post_id"
    " LEFT JOIN post_comment_counts cc ON cc.post_id = p.post_id"
    " LEFT JOIN post_states s ON s.post_id = p.post_id"
)
POST_FROM = "posts p" + POST_JOINS
# Listed posts: neither deleted nor removed.
LISTED = "s.deleted_at IS NULL AND NOT coalesce(s.removed, false)"

UPSERT_POST = (
    "INSERT INTO posts (post_id, community_id, community_name, author_id, author_name, title,"
    " kind, body, url, media_id, created_at, event_id, media_key, thumbnail_key)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    " ON CONFLICT (post_id) DO NOTHING"
)
UPSERT_AGGREGATE = (
    "INSERT INTO post_aggregates (post_id, community_id, upvotes, downvotes, score, seq)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
    " ON CONFLICT (post_id) DO UPDATE SET upvotes = EXCLUDED.upvotes,"
    " downvotes = EXCLUDED.downvotes, score = EXCLUDED.score, seq = EXCLUDED.seq,"
    " updated_at = now() WHERE post_aggregates.seq < EXCLUDED.seq"
)

UPSERT_RANK = (
    "INSERT INTO post_ranks (post_id, community_id, created_at, score, upvotes, downvotes,"
    " hot, rising, controversy, rank_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    " ON CONFLICT (post_id) DO UPDATE SET score = EXCLUDED.score,"
    " upvotes = EXCLUDED.upvotes, downvotes = EXCLUDED.downvotes, hot = EXCLUDED.hot,"
    " rising = EXCLUDED.rising, controversy = EXCLUDED.controversy,"
    " rank_seq = EXCLUDED.rank_seq WHERE post_ranks.rank_seq <= EXCLUDED.rank_seq"
)

UPSERT_COMMENT_COUNT = (
    "INSERT INTO post_comment_counts (post_id, community_id, comment_count) VALUES ($1, $2, $3)"
    " ON CONFLICT (post_id) DO UPDATE SET comment_count = EXCLUDED.comment_count,"
    " updated_at = now() WHERE post_comment_counts.comment_count < EXCLUDED.comment_count"
)


def encode_cursor(values: Sequence[Any]) -> str:
    raw = orjson.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != arity:
            raise ValueError("wrong arity")
        return values
    except ValueError:
        raise ValidationFailed("cursor is not valid", {"cursor": "malformed"}) from None


class PostStore:
    def __init__(self, router: ShardRouter) -> None:
        self.router = router

    async def get(self, post_id: str) -> dict[str, Any]:
        pool = self.router.for_post(post_id)
        row = await pool.fetchrow(
            f"SELECT {POST_COLUMNS} FROM {POST_FROM} WHERE p.post_id = $1", post_id
        )
        if row is None:
            raise NotFound("post not found", {"post_id": post_id})
        return dict(row)

    async def by_author(
        self, author_id: str, limit: int, before: tuple[datetime, str] | None
    ) -> list[dict[str, Any]]:
        """The author's posts (deleted ones left out), newest first, across every
        shard, older than `before` (created_at, post_id) if given."""
        start = before or (datetime.max.replace(tzinfo=UTC), "~")
        query = (
            f"SELECT {POST_COLUMNS} FROM {POST_FROM} WHERE p.author_id = $1"
            " AND s.deleted_at IS NULL AND (p.created_at, p.post_id) < ($2, $3)"
            " ORDER BY p.created_at DESC, p.post_id DESC LIMIT $4"
        )
        pools = list(self.router.pools.values())
        results = await asyncio.gather(
            *(pool.fetch(query, author_id, start[0], start[1], limit) for pool in pools)
        )
        rows = {r["post_id"]: dict(r) for rs in results for r in rs}  # a move may copy rows
        ordered = sorted(rows.values(), key=lambda r: (r["created_at"], r["post_id"]), reverse=True)
        return ordered[:limit]

    async def by_ids(self, post_ids: list[str]) -> dict[str, dict[str, Any]]:
        by_shard: dict[int, tuple[asyncpg.Pool, list[str]]] = {}
        for post_id in post_ids:
            pool = self.router.for_post(post_id)
            by_shard.setdefault(id(pool), (pool, []))[1].append(post_id)
        results = await asyncio.gather(*(fetch_posts(pool, ids) for pool, ids in by_shard.values()))
        return {row["post_id"]: dict(row) for rows in results for row in rows}

    async def list_new(
        self, community_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        pool = self.router.for_community(community_id)
        if cursor:
            created, post_id = decode_cursor(cursor, 2)
            try:
                created_at = datetime.fromisoformat(created)
            except (TypeError, ValueError):
                raise ValidationFailed("cursor is not valid", {"cursor": "malformed"}) from None
            rows = await pool.fetch(
                f"SELECT {POST_COLUMNS} FROM {POST_FROM} WHERE p.community_id = $1"
                " AND (p.created_at, p.post_id) < ($2, $3)"
                " ORDER BY p.created_at DESC, p.post_id DESC LIMIT $4",
                community_id,
                created_at,
                str(post_id),
                limit + 1,
            )
        else:
            rows = await pool.fetch(
                f"SELECT {POST_COLUMNS} FROM {POST_FROM} WHERE p.community_id = $1"
                " ORDER BY p.created_at DESC, p.post_id DESC LIMIT $2",
                community_id,
                limit + 1,
            )
        items = [dict(r) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = encode_cursor([last["created_at"], last["post_id"]])
        return items, next_cursor


async def upsert_posts(conn: asyncpg.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    await conn.executemany(UPSERT_POST, list(rows))


STATE_COLUMNS = ("title", "body", "url", "edited_at", "deleted_at", "removed", "locked", "flair")


async def upsert_post_states(
    conn: asyncpg.Connection, rows: Iterable[tuple[str, str, dict[str, object]]]
) -> None:
    """(post id, community id, {column: value}) in log order: each row sets only its own
    columns (an edit its text, a removal `removed`, ...)."""
    for post_id, community_id, columns in rows:
        names = [n for n in STATE_COLUMNS if n in columns]
        values = [columns[n] for n in names]
        placeholders = ", ".join(f"${i + 3}" for i in range(len(names)))
        updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names)
        await conn.execute(
            f"INSERT INTO post_states (post_id, community_id, {', '.join(names)})"
            f" VALUES ($1, $2, {placeholders}) ON CONFLICT (post_id) DO UPDATE SET {updates}",
            post_id,
            community_id,
            *values,
        )


async def upsert_aggregates(conn: asyncpg.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    await conn.executemany(UPSERT_AGGREGATE, list(rows))


async def upsert_comment_counts(
    conn: asyncpg.Connection, rows: Iterable[tuple[str, str, int]]
) -> None:
    await conn.executemany(UPSERT_COMMENT_COUNT, list(rows))


async def upsert_ranks(conn: asyncpg.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """(post_id, community_id, created_at, score, upvotes, downvotes, hot, rising,
    controversy, rank_seq) rows; a row with a lower rank_seq than the stored one is kept out."""
    await conn.executemany(UPSERT_RANK, list(rows))


async def delete_ranks(conn: asyncpg.Connection, post_ids: list[str]) -> None:
    """Deleted or removed posts leave the rank columns (pages past the Redis sets)."""
    if post_ids:
        await conn.execute("DELETE FROM post_ranks WHERE post_id = ANY($1::text[])", post_ids)


async def fetch_posts(db: asyncpg.Pool | asyncpg.Connection, post_ids: list[str]) -> list[Any]:
    """The posts among `post_ids` that this shard holds, with tallies and comment counts."""
    return list(
        await db.fetch(
            f"SELECT {POST_COLUMNS} FROM {POST_FROM} WHERE p.post_id = ANY($1::text[])", post_ids
        )
    )


async def count_posts(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM posts"))


async def scan_posts(conn: asyncpg.Connection, batch: int) -> AsyncIterator[list[Any]]:
    """Every post of the shard with its tallies and comment count, `batch` rows at a time
    (one transaction, a server-side cursor)."""
    async with conn.transaction():
        rows: list[Any] = []
        async for row in conn.cursor(f"SELECT {POST_COLUMNS} FROM {POST_FROM}"):
            rows.append(row)
            if len(rows) >= batch:
                yield rows
                rows = []
        if rows:
            yield rows


# Emptied before a replay, by the dataflow that derives each table.


async def erase_author(conn: asyncpg.Connection, author_id: str, name: str) -> list[str]:
    """Every post of a deleted account shows `name` as its author; the ids touched."""
    rows = await conn.fetch(
        "UPDATE posts SET author_name = $2 WHERE author_id = $1 AND author_name <> $2"
        " RETURNING post_id",
        author_id,
        name,
    )
    return [r["post_id"] for r in rows]


def truncate_posts(settings: Settings) -> None:
    truncate_on_shards(settings, ("posts",))


def truncate_comment_counts(settings: Settings) -> None:
    truncate_on_shards(settings, ("post_comment_counts",))


def truncate_post_states(settings: Settings) -> None:
    truncate_on_shards(settings, ("post_states",))


def truncate_aggregates(settings: Settings) -> None:
    truncate_on_shards(settings, ("post_aggregates",))


def truncate_ranks(settings: Settings) -> None:
    truncate_on_shards(settings, ("post_ranks",))


RANK_COLUMNS = {
    "hot": "r.hot",
    "top": "r.score",
    "controversial": "r.controversy",
    "rising": "r.rising",
    "new": "extract(epoch FROM r.created_at)",
}


class RankedPostStore:
    """Shard-side reads for listings: rows by id (cache misses) and pages past the
    Redis sets, from the rank columns the ranking dataflow keeps."""

    def __init__(self, router: ShardRouter) -> None:
        self.router = router

    async def rows_by_ids(self, post_ids: list[str]) -> dict[str, dict[str, Any]]:
        by_shard: dict[int, tuple[asyncpg.Pool, list[str]]] = {}
        for post_id in post_ids:
            pool = self.router.for_post(post_id)
            by_shard.setdefault(id(pool), (pool, []))[1].append(post_id)
        results = await asyncio.gather(*(fetch_posts(pool, ids) for pool, ids in by_shard.values()))
        return {row["post_id"]: dict(row) for rows in results for row in rows}

    async def page(
        self,
        community_id: str,
        sort: str,
        since: datetime | None,
        after: tuple[float, str] | None,
        limit: int,
        hidden_authors: list[str] | None = None,
    ) -> list[tuple[dict[str, Any], float]]:
        """Ranked rows past the Redis set; removed and deleted posts and those of
        `hidden_authors` (shadow-banned, for this reader) left out."""
        column = RANK_COLUMNS[sort]
        pool = self.router.for_community(community_id)
        conditions = ["r.community_id = $1", f"{column} IS NOT NULL"]
        args: list[Any] = [community_id]
        if hidden_authors:
            args.append(hidden_authors)
            conditions.append(f"p.author_id <> ALL(${len(args)}::text[])")
        if since is not None:
            args.append(since)
            conditions.append(f"r.created_at >= ${len(args)}")
        if after is not None:
            args += [after[0], after[1]]
            conditions.append(f"({column}, r.post_id) < (${len(args) - 1}, ${len(args)})")
        args.append(limit)
        rows = await pool.fetch(
            f"SELECT {POST_COLUMNS}, {column} AS rank FROM post_ranks r"
            f" JOIN posts p ON p.post_id = r.post_id{POST_JOINS}"
            f" WHERE {' AND '.join(conditions)} AND {LISTED}"
            f" ORDER BY {column} DESC, r.post_id DESC LIMIT ${len(args)}",
            *args,
        )
        return [(dict(r), float(r["rank"])) for r in rows]
