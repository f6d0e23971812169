"""The Lemmy-style baseline behind the same HTTP stack as the platform (benchmarks only).

`benchmarks.bench_app:create_app` serves the platform's API plus these routes:
  GET /bench/lemmy/communities/<id>/hot   ORDER BY hot_rank DESC LIMIT 25 (+ my_vote)
  GET /bench/lemmy/feed                   the same over followed communities
  PUT /bench/lemmy/votes                  upsert into post_like; triggers update the
                                          post's aggregates and the author's karma
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
from sanic import Blueprint, HTTPResponse, Request

from api import commands
from api.http import json, parse, principal
from domain import ranking

BASELINE_DB = "bench_lemmy"
SCHEMA = Path(__file__).with_name("lemmy_baseline.sql")

bp = Blueprint("lemmy_baseline", url_prefix="/bench/lemmy")

LIST = (
    "SELECT p.post_id, p.community_name AS community, p.creator_name AS author, p.title,"
    " p.kind, p.url, p.created_at, a.score, a.upvotes, a.downvotes,"
    " a.comments AS comment_count, coalesce(l.score, 0) AS my_vote"
    " FROM post_aggregates a JOIN post p ON p.post_id = a.post_id"
    " LEFT JOIN post_like l ON l.post_id = a.post_id AND l.person_id = $2"
)


@bp.get("/communities/<community_id:str>/hot")
async def hot(request: Request, community_id: str) -> HTTPResponse:
    user = principal(request)
    rows = await request.app.ctx.lemmy.fetch(
        LIST + " WHERE a.community_id = $1 ORDER BY a.hot_rank DESC LIMIT 25",
        community_id,
        user.user_id,
    )
    return json({"items": [dict(r) for r in rows], "next_cursor": None})


@bp.get("/feed")
async def feed(request: Request) -> HTTPResponse:
    user = principal(request)
    rows = await request.app.ctx.lemmy.fetch(
        LIST.replace("$2", "$1") + " WHERE a.community_id IN (SELECT community_id"
        " FROM community_follower WHERE person_id = $1) ORDER BY a.hot_rank DESC LIMIT 25",
        user.user_id,
    )
    return json({"items": [dict(r) for r in rows], "next_cursor": None})


@bp.put("/votes")
async def vote(request: Request) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.CastVote)
    async with request.app.ctx.lemmy.acquire() as conn, conn.transaction():
        if cmd.direction == 0:
            await conn.execute(
                "DELETE FROM post_like WHERE post_id = $1 AND person_id = $2",
                cmd.target_id,
                user.user_id,
            )
        else:
            await conn.execute(
                "INSERT INTO post_like (post_id, person_id, score) VALUES ($1, $2, $3)"
                " ON CONFLICT (post_id, person_id) DO UPDATE SET score = EXCLUDED.score",
                cmd.target_id,
                user.user_id,
                cmd.direction,
            )
        score = await conn.fetchval(
            "SELECT score FROM post_aggregates WHERE post_id = $1", cmd.target_id
        )
    return json({"target_id": cmd.target_id, "direction": cmd.direction, "score": score})


async def load_schema(conn: asyncpg.Connection) -> None:
    await conn.execute(SCHEMA.read_text())


async def copy_posts(conn: asyncpg.Connection, rows: list[dict]) -> None:
    """The platform's posts and tallies, with hot_rank stored as Lemmy's job would."""
    await conn.executemany(
        "INSERT INTO post VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [
            (
                r["post_id"],
                r["community_id"],
                r["community_name"],
                r["author_id"],
                r["author_name"],
                r["title"],
                r["kind"],
                r["url"],
                r["created_at"],
            )
            for r in rows
        ],
    )
    await conn.executemany(
        "INSERT INTO post_aggregates (post_id, community_id, creator_id, upvotes, downvotes,"
        " score, hot_rank, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            (
                r["post_id"],
                r["community_id"],
                r["author_id"],
                r["upvotes"],
                r["downvotes"],
                r["score"],
                ranking.hot(r["score"], r["created_at"]),
                r["created_at"],
            )
            for r in rows
        ],
    )
    await conn.executemany(
        "INSERT INTO person_aggregates (person_id) VALUES ($1) ON CONFLICT DO NOTHING",
        [(r["author_id"],) for r in rows],
    )
