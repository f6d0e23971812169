"""Abuse read models, written by the spam dataflow: the owner of the `account_trust`
and `abuse_flags` tables (identity database) and of the `trust:{user}` Redis hash
(s score, seq). The trust score is never served on public profiles: moderators read
it with the flags (`flags_in`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import redis

from stores.pg import truncate_on_identity
from stores.redis_store import delete_matching
from stores.settings import Settings

UPSERT_TRUST = (
    "INSERT INTO account_trust (user_id, score, signals, removals, excluded, seq)"
    " VALUES ($1, $2, $3::jsonb, $4, $5, $6) ON CONFLICT (user_id) DO UPDATE SET"
    " score = EXCLUDED.score, signals = EXCLUDED.signals, removals = EXCLUDED.removals,"
    " excluded = EXCLUDED.excluded, seq = EXCLUDED.seq, updated_at = now()"
    " WHERE account_trust.seq < EXCLUDED.seq"
)
INSERT_FLAG = (
    "INSERT INTO abuse_flags (user_id, signal, target_id, target_type, community_id,"
    " evidence, detected_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)"
    " ON CONFLICT (user_id, signal, target_id) DO NOTHING"
)


def trust_key(user_id: str) -> str:
    return f"trust:{user_id}"


@dataclass(frozen=True)
class TrustRow:
    user_id: str
    score: float
    signals: dict[str, int]
    removals: int
    excluded: bool
    seq: int


@dataclass(frozen=True)
class FlagRow:
    user_id: str
    signal: str
    target_id: str
    target_type: str
    community_id: str
    evidence: dict[str, object]
    detected_at: datetime


async def upsert_trust(conn: asyncpg.Connection, rows: Iterable[TrustRow]) -> None:
    await conn.executemany(
        UPSERT_TRUST,
        [(r.user_id, r.score, json.dumps(r.signals), r.removals, r.excluded, r.seq) for r in rows],
    )


async def insert_flags(conn: asyncpg.Connection, rows: Iterable[FlagRow]) -> None:
    await conn.executemany(
        INSERT_FLAG,
        [
            (
                r.user_id,
                r.signal,
                r.target_id,
                r.target_type,
                r.community_id,
                json.dumps(r.evidence),
                r.detected_at,
            )
            for r in rows
        ],
    )


def cache_trust(pipe: redis.Redis, rows: Iterable[TrustRow]) -> None:
    """Queue the Redis copy (newest seq wins within a batch; rows come deduplicated)."""
    for r in rows:
        pipe.hset(trust_key(r.user_id), mapping={"s": r.score, "seq": r.seq})


async def trust_of(
    conn: asyncpg.Connection | asyncpg.Pool, user_ids: list[str]
) -> dict[str, float]:
    rows = await conn.fetch(
        "SELECT user_id, score FROM account_trust WHERE user_id = ANY($1::text[])", user_ids
    )
    return {r["user_id"]: float(r["score"]) for r in rows}


async def flags_in(
    conn: asyncpg.Connection | asyncpg.Pool, community_id: str, limit: int = 100
) -> list[dict[str, object]]:
    """Open automatic flags of a community, oldest first, with the account's trust."""
    rows = await conn.fetch(
        "SELECT f.user_id, f.signal, f.target_id, f.target_type, f.evidence::text AS evidence,"
        " f.detected_at, t.score AS trust FROM abuse_flags f"
        " LEFT JOIN account_trust t ON t.user_id = f.user_id"
        " WHERE f.community_id = $1 ORDER BY f.created_at, f.target_id LIMIT $2",
        community_id,
        limit,
    )
    return [{**dict(r), "evidence": json.loads(r["evidence"]), "trust": r["trust"]} for r in rows]


def wipe(settings: Settings) -> None:
    truncate_on_identity(settings, ("account_trust", "abuse_flags"))
    client = redis.Redis.from_url(settings.redis_url)
    delete_matching(client, trust_key("*"))
    client.close()
