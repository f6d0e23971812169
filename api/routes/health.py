"""Liveness, readiness (names the failing dependency), Prometheus metrics."""

from __future__ import annotations

import asyncio
import os

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import raw

from api.http import json, platform
from observability.metrics import exposition

bp = Blueprint("health")


@bp.get("/healthz")
@bp.get("/api/v1/healthz", name="healthz_v1")
async def healthz(_request: Request) -> HTTPResponse:
    return json({"status": "ok", "pid": os.getpid()})


@bp.get("/readyz")
@bp.get("/api/v1/readyz", name="readyz_v1")
async def readyz(request: Request) -> HTTPResponse:
    wired = platform(request)
    checks = {
        "postgres_identity": wired.identity_pool.fetchval("SELECT 1"),
        "redis": wired.redis.ping(),
        "kafka": asyncio.to_thread(wired.publisher.ping),
        "cql": wired.comments.ping(),
        "s3": asyncio.to_thread(wired.objects.ping),
        "smtp": asyncio.to_thread(wired.smtp.ping),
        "meilisearch": wired.search_index.ping(),
    }
    for shard, pool in wired.shards.pools.items():
        checks[f"postgres_{shard}"] = pool.fetchval("SELECT 1")
    results = await asyncio.gather(
        *(asyncio.wait_for(c, timeout=3) for c in checks.values()), return_exceptions=True
    )
    failing = {
        name: f"{type(r).__name__}: {r}"[:200]
        for name, r in zip(checks, results, strict=True)
        if isinstance(r, BaseException)
    }
    if failing:
        body = {
            "error": {
                "code": "not_ready",
                "message": f"not ready: {', '.join(sorted(failing))}",
                "details": failing,
            }
        }
        return json(body, 503)
    return json({"status": "ready", "checks": sorted(checks)})


@bp.get("/metrics")
@bp.get("/api/v1/metrics", name="metrics_v1")
async def metrics(_request: Request) -> HTTPResponse:
    body, content_type = exposition()
    return raw(body, content_type=content_type)
