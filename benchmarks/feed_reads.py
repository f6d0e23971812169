"""Feed reads: the platform's ranked listings against a Lemmy-style baseline, same run.

    python -m benchmarks.feed_reads [--communities 10] [--posts 100] [--seconds 15]
                                    [--rounds 3] [--check-rounds 4]

Needs the local stack and the dataflows running (`bash deploy/up.sh`) and wrk.
Starts one Sanic app (2 workers) serving both the platform's routes and the baseline's
(`benchmarks/lemmy_baseline.py`: the same posts and tallies in Postgres with a stored
hot_rank, a (community, hot_rank) index and ORDER BY hot_rank DESC LIMIT 25), then
drives hot community pages and home feeds of a signed-in reader with wrk, for
`--rounds` rounds alternating which design goes first (the median run stands), and
the platform's pages once more at half that rate (paced) for their latency. Then it
measures what the governance checks cost: the same platform routes from a second app
without them (`benchmarks/unchecked.py`), alternating with the first for
`--check-rounds` rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx

from benchmarks.common import (
    WrkResult,
    ensure_baseline_db,
    lua_rotating_get,
    mint_tokens,
    paced,
    run_wrk,
    start_bench_app,
    start_process,
)
from benchmarks.cpu import CpuMeter
from benchmarks.lemmy_baseline import BASELINE_DB, copy_posts, load_schema
from domain.ids import new_id
from stores.placement import shard_names
from stores.posts import fetch_posts
from stores.rankings import ranked_count
from stores.redis_store import live_counts, sync_client, voters
from stores.ring import ShardRing
from stores.settings import Settings, get_settings

PORT = 8100
UNCHECKED_PORT = 8101  # the same app with the governance checks taken out
READERS = 40


def seed(base: str, settings: Settings, communities: int, posts: int, votes: int) -> dict:
    http = httpx.Client(base_url=f"{base}/api/v1", timeout=30)
    name = f"reader{new_id()[-8:].lower()}"
    http.post(
        "/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": "bench-password"},
    ).raise_for_status()
    token = http.post("/auth/login", json={"login": name, "password": "bench-password"}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    names, ids, post_ids = [], [], []
    for c in range(communities):
        cname = f"feed{new_id()[-8:].lower()}{c}"
        http.post("/communities", json={"name": cname}, headers=headers).raise_for_status()
        names.append(cname)
        ids.append(http.get(f"/communities/{cname}").json()["community_id"])
        for p in range(posts):
            r = http.post(
                f"/communities/{cname}/posts", json={"title": f"{cname} {p}"}, headers=headers
            )
            r.raise_for_status()
            post_ids.append(r.json()["post_id"])
    wait(lambda: all(http.get(f"/posts/{p}").status_code == 200 for p in post_ids[-5:]))
    tokens = mint_tokens(settings, 300)
    rng = random.Random(5)
    weights = [rng.paretovariate(1.2) for _ in post_ids]
    plan = [
        (rng.choice(tokens), rng.choices(post_ids, weights)[0], rng.choice((1, 1, -1)))
        for _ in range(votes)
    ]

    def cast(item: tuple[str, str, int]) -> None:
        token, post_id, direction = item
        http.put(
            "/votes",
            json={"target_id": post_id, "target_type": "post", "direction": direction},
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(cast, plan))
    readers = [register_reader(http, settings) for _ in range(READERS)]
    follows = {}
    for reader_token, reader_id in readers:
        chosen = rng.sample(range(communities), max(1, communities // 2))
        for c in chosen:
            http.post(
                f"/communities/{names[c]}/join",
                headers={"Authorization": f"Bearer {reader_token}"},
            ).raise_for_status()
        follows[reader_id] = [ids[c] for c in chosen]
    return {
        "headers": headers,
        "names": names,
        "ids": ids,
        "posts": post_ids,
        "readers": readers,
        "follows": follows,
    }


def register_reader(http: httpx.Client, settings: Settings) -> tuple[str, str]:
    name = f"rd{new_id()[-10:].lower()}"
    http.post(
        "/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": "bench-password"},
    ).raise_for_status()
    login = http.post("/auth/login", json={"login": name, "password": "bench-password"})
    token = login.json()["access_token"]
    return token, _user_id(settings, token)


def wait(check: Callable[[], bool], timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the platform to settle")
        time.sleep(0.2)


async def shard_rows(settings: Settings, post_ids: list[str]) -> list[dict]:
    rows: list[dict] = []
    for shard in await shard_names(settings):
        conn = await asyncpg.connect(settings.dsn(shard))
        try:
            rows += [dict(r) for r in await fetch_posts(conn, post_ids)]
        finally:
            await conn.close()
    return rows


async def build_baseline(settings: Settings, world: dict) -> None:
    rows = await shard_rows(settings, world["posts"])
    conn = await asyncpg.connect(settings.dsn(BASELINE_DB))
    try:
        await load_schema(conn)
        await copy_posts(conn, rows)
        await conn.executemany(
            "INSERT INTO community_follower VALUES ($1, $2)",
            [(c, reader) for reader, cs in world["follows"].items() for c in cs],
        )
        redis = sync_client(settings.redis_url)
        likes = []
        for post_id in world["posts"]:
            for user, direction in voters(redis, post_id).items():
                likes.append((post_id, user, direction))
        redis.close()
        # Loaded without the trigger: the aggregates were copied already.
        await conn.execute("ALTER TABLE post_like DISABLE TRIGGER post_like_aggregates")
        await conn.executemany("INSERT INTO post_like VALUES ($1, $2, $3)", likes)
        await conn.execute("ALTER TABLE post_like ENABLE TRIGGER post_like_aggregates")
    finally:
        await conn.close()


def settled(base: str, world: dict, settings: Settings) -> bool:
    """The shard tallies match Redis' live scores and the hot sets list every post."""
    rows = asyncio.run(shard_rows(settings, world["posts"]))
    redis = sync_client(settings.redis_url)
    try:
        live = live_counts(redis, [r["post_id"] for r in rows])
        if any(live[r["post_id"]] != (r["upvotes"], r["downvotes"]) for r in rows):
            return False
        return all(ranked_count(redis, c, "hot") >= 1 for c in world["ids"])
    finally:
        redis.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--communities", type=int, default=10)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--votes", type=int, default=4000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check-rounds", type=int, default=4)
    args = parser.parse_args()
    settings = get_settings()
    ensure_baseline_db()
    app = start_bench_app(PORT)
    unchecked = start_process(
        ["-m", "benchmarks.unchecked", "--port", str(UNCHECKED_PORT), "--workers", "2"],
        f"http://127.0.0.1:{UNCHECKED_PORT}/readyz",
        timeout=180,
    )
    base = f"http://127.0.0.1:{PORT}"
    bases = {False: base, True: f"http://127.0.0.1:{UNCHECKED_PORT}"}
    try:
        world = seed(base, settings, args.communities, args.posts, args.votes)
        wait(lambda: settled(base, world, settings))
        asyncio.run(build_baseline(settings, world))
        _check_same_order(base, world)
        ring = ShardRing(asyncio.run(shard_names(settings)))
        shards = {ring.shard_for(c) for c in world["ids"]}
        tokens = [t for t, _id in world["readers"]]
        scenarios = {
            "community hot page (platform)": [
                (f"/api/v1/communities/{n}/posts?sort=hot", t)
                for n in world["names"]
                for t in tokens
            ],
            "community hot page (baseline)": [
                (f"/bench/lemmy/communities/{c}/hot", t) for c in world["ids"] for t in tokens
            ],
            "home feed, hot (platform)": [("/api/v1/feed?sort=hot", t) for t in tokens],
            "home feed, hot (baseline)": [("/bench/lemmy/feed", t) for t in tokens],
        }
        apps = {False: app.pid, True: unchecked.pid}
        results = {}
        cpu = {}
        checks: dict[tuple[str, bool], list[tuple[float, float]]] = {}
        meter = CpuMeter()
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "get.lua"

            def drive(label: str, bare: bool) -> tuple[WrkResult, tuple[float, float, float]]:
                script.write_text(lua_rotating_get(scenarios[label]))
                meter.start({"bench app (API)": apps[bare]})
                result = run_wrk(bases[bare], str(script), args.seconds, args.connections)
                return result, read_cost(meter.stop(), result.requests)

            # Each page of both designs, alternating which goes first round by round
            # (the machine drifts, and the dataflows settle during the first minutes);
            # the run with the median rate stands for each.
            runs: dict[str, list[tuple[WrkResult, tuple[float, float, float]]]] = {}
            pairs = [list(scenarios)[:2], list(scenarios)[2:]]
            for round_ in range(args.rounds):
                for pair in pairs:
                    for label in pair if round_ % 2 == 0 else reversed(pair):
                        runs.setdefault(label, []).append(drive(label, False))
            for label, measured in runs.items():
                ranked = sorted(measured, key=lambda run: run[0].requests_per_second)
                results[label], cpu[label] = ranked[len(ranked) // 2]
            # The latency aim is set at half of the platform's max rate: paced requests
            # (Poisson-spaced) at half the median rate just measured.
            half_load: dict[str, WrkResult] = {}
            for label in (pair[0] for pair in pairs):
                rate = results[label].requests_per_second / 2
                script.write_text(paced(lua_rotating_get(scenarios[label]), rate))
                half_load[label] = run_wrk(base, str(script), args.seconds, args.connections)
            # The checks' cost: the same platform routes from the app without them,
            # alternating with the checked app round by round (the machine drifts).
            for round_ in range(args.check_rounds):
                for what in ("community hot page", "home feed, hot"):
                    for bare in (False, True) if round_ % 2 == 0 else (True, False):
                        result, cost = drive(f"{what} (platform)", bare)
                        checks.setdefault((what, bare), []).append(
                            (result.requests_per_second, sum(cost))
                        )
        print(
            f"feed reads: {args.communities} communities x {args.posts} posts over "
            f"{len(shards)} shards, {READERS} signed-in readers each following "
            f"{max(1, args.communities // 2)} communities, {args.seconds}s per scenario, "
            f"{args.connections} connections, median of {args.rounds} alternating rounds"
        )
        for label, r in results.items():
            print(
                f"  {label:32s} {r.requests_per_second:8.0f} req/s  p50 {r.p50_ms:6.1f} ms"
                f"  p99 {r.p99_ms:6.1f} ms  non-2xx {r.non_2xx}"
            )
        for label, r in half_load.items():
            print(
                f"  {label} at half its max rate: {r.requests_per_second:.0f} req/s"
                f"  p50 {r.p50_ms:.1f} ms  p99 {r.p99_ms:.1f} ms  non-2xx {r.non_2xx}"
            )
        page = (
            results["community hot page (platform)"].requests_per_second
            / results["community hot page (baseline)"].requests_per_second
        )
        feed = (
            results["home feed, hot (platform)"].requests_per_second
            / results["home feed, hot (baseline)"].requests_per_second
        )
        print(f"  ratio platform/baseline: community page {page:.2f}x, home feed {feed:.2f}x")
        for what in ("community hot page", "home feed, hot"):
            if not checks:
                break
            on, off = (checks[(what, bare)] for bare in (False, True))
            rps_on, rps_off = (statistics.median(r for r, _ in runs) for runs in (on, off))
            cpu_on, cpu_off = (statistics.median(c for _, c in runs) for runs in (on, off))
            print(
                f"  governance checks, {what} ({args.check_rounds} alternating rounds, "
                f"medians): {rps_on:.0f} req/s with, {rps_off:.0f} without "
                f"({(1 - rps_on / rps_off) * 100:+.1f}% fewer); CPU {cpu_on:.0f} vs "
                f"{cpu_off:.0f} us per request ({(cpu_on / cpu_off - 1) * 100:+.1f}%)"
            )
        print("  CPU per request (us): app, Redis, Postgres, total")
        for label, (app_us, redis_us, pg_us) in cpu.items():
            print(
                f"  {label:32s} {app_us:8.0f} {redis_us:8.0f} {pg_us:8.0f}"
                f" {app_us + redis_us + pg_us:8.0f}"
            )
        print(
            json.dumps(
                {
                    k: {
                        "rps": round(v.requests_per_second),
                        "p50_ms": v.p50_ms,
                        "p99_ms": v.p99_ms,
                        "non_2xx": v.non_2xx,
                        "cpu_us_per_request": round(sum(cpu[k]), 1),
                    }
                    for k, v in results.items()
                }
            )
        )
    finally:
        app.terminate()
        unchecked.terminate()
        app.wait(30)


def read_cost(spent: dict[str, float], requests: int) -> tuple[float, float, float]:
    """CPU microseconds per request of the app, Redis and Postgres (what a read uses)."""
    per = 1e6 / max(requests, 1)
    return (
        spent.get("bench app (API)", 0.0) * per,
        spent.get("redis", 0.0) * per,
        spent.get("postgres", 0.0) * per,
    )


def _user_id(settings: Settings, token: str) -> str:
    from api.security import TokenService

    service = TokenService(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, 60)
    return service.verify(token).user_id


def _check_same_order(base: str, world: dict) -> None:
    """Both designs must list the same posts in the same order, or the race is unfair."""
    ours = httpx.get(
        f"{base}/api/v1/communities/{world['names'][0]}/posts?sort=hot", headers=world["headers"]
    ).json()["items"]
    theirs = httpx.get(
        f"{base}/bench/lemmy/communities/{world['ids'][0]}/hot", headers=world["headers"]
    ).json()["items"]
    if [p["post_id"] for p in ours] != [p["post_id"] for p in theirs]:
        raise RuntimeError("platform and baseline disagree on the hot order")


if __name__ == "__main__":
    main()
