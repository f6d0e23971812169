"""Search: index build time, query throughput and latency against ILIKE and Postgres
FTS behind the same Sanic app, and freshness (post accepted -> found by GET /search).

    python -m benchmarks.search [--posts 100000] [--communities 100] [--seconds 15]
                                [--connections 32] [--fresh 100]

Needs the local stack (`bash deploy/stack.sh up`, Meilisearch included) and wrk.

1. Corpus: `--posts` posts of English text from Faker (seeded: the same corpus every
   run) in `--communities` public communities.
2. Index build: the search dataflow itself (decode, fold, guarded Meilisearch sink
   with batched writes waited on) over the corpus's events in-process, into the live
   `posts` index; the time until every task is done is what a reindex of that many
   posts costs (a replay adds only reading the log).
3. Baselines: the same posts in Postgres (`bench_search`): ILIKE, and a stored
   tsvector with a GIN index.
4. Queries: one Sanic app (2 workers, `benchmarks/search_app.py`) serves all three;
   wrk drives each with the same rotating one- and two-word queries, anonymous.
5. Freshness: a live search dataflow and outbox relay; posts through
   `POST /communities/{name}/posts`, each polled with GET /search (every 10 ms) until
   found; p50/p99 of accepted -> found.
6. The corpus's documents are deleted from the index at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main
from faker import Faker

from benchmarks import search_baseline
from benchmarks.common import WrkResult, paced, percentile, run_wrk, start_process
from dataflows import search
from dataflows.common import SourceItem
from dataflows.guard import GuardedSink
from domain.ids import new_id, new_post_id
from domain.search import in_filter
from schemas.envelope import encode, new_event
from schemas.events import CommunityCreated, DeadLetter, PostCreated
from stores import search as store
from stores.settings import Settings, get_settings

PORT = 8110
PACED_CONNECTIONS = 16


def corpus(posts: int, communities: int) -> tuple[list[CommunityCreated], list[PostCreated]]:
    fake = Faker("en_US")
    fake.seed_instance(7)
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=30)
    comms = [
        CommunityCreated(
            community_id=new_id(),
            name=f"bench{i}{fake.word()}"[:21],
            description=fake.sentence(nb_words=8),
            visibility="public",
            creator_id=new_id(),
            created_at=start,
        )
        for i in range(communities)
    ]
    authors = [(new_id(), f"{fake.user_name()}{i}"[:30]) for i in range(max(10, posts // 50))]
    out = []
    for i in range(posts):
        c = comms[rng.randrange(communities)]
        author_id, author = authors[rng.randrange(len(authors))]
        out.append(
            PostCreated(
                post_id=new_post_id(c.community_id),
                community_id=c.community_id,
                community_name=c.name,
                author_id=author_id,
                author_name=author,
                title=fake.sentence(nb_words=rng.randint(5, 12)).rstrip("."),
                kind="text",
                body=fake.paragraph(nb_sentences=rng.randint(2, 6)),
                created_at=start + timedelta(seconds=i * 25),
            )
        )
    return comms, out


def build_index(
    settings: Settings, comms: list[CommunityCreated], posts: list[PostCreated]
) -> float:
    """The search dataflow over the corpus in-process; seconds until all is indexed."""
    messages: list[SourceItem] = []
    payloads: list[CommunityCreated | PostCreated] = [*comms, *posts]
    for n, payload in enumerate(payloads):
        topic = "communities" if isinstance(payload, CommunityCreated) else "posts"
        value = encode(new_event(payload, key=payload.community_id))
        messages.append(
            KafkaSourceMessage(key=b"k", value=value, topic=topic, offset=n, partition=0)
        )

    class Letters:
        def publish(self, letters: list[DeadLetter]) -> None:
            raise RuntimeError(f"dead letters while indexing the corpus: {letters[:3]}")

    sink = GuardedSink(
        "search",
        "documents_out",
        lambda: search.SearchWriter(store.connect(settings)),
        Letters,
    )
    letters: list[DeadLetter] = []
    flow = search.build_flow(
        TestingSource(messages, batch_size=2000), search.Sinks(sink), TestingSink(letters)
    )
    started = time.perf_counter()
    run_main(flow)
    elapsed = time.perf_counter() - started
    if letters:
        raise RuntimeError(f"{len(letters)} dead letters, first: {letters[0]}")
    return elapsed


async def load_baseline(settings: Settings, posts: list[PostCreated]) -> float:
    conn = await asyncpg.connect(settings.dsn(search_baseline.BASELINE_DB))
    started = time.perf_counter()
    try:
        await search_baseline.load(
            conn,
            (
                (p.post_id, p.community_name, p.author_name, p.title, p.body or "", 0, p.created_at)
                for p in posts
            ),
        )
    finally:
        await conn.close()
    return time.perf_counter() - started


def queries(posts: list[PostCreated], count: int = 300) -> list[str]:
    rng = random.Random(11)
    words = [w.strip(".,").lower() for p in posts[:5000] for w in p.title.split()]
    words = [w for w in words if len(w) >= 4]
    out = []
    for i in range(count):
        out.append(rng.choice(words) if i % 2 else f"{rng.choice(words)} {rng.choice(words)}")
    return out


def lua_paths(paths: list[str]) -> str:
    listed = ",".join(f'"{p}"' for p in paths)
    return f"""
local paths = {{{listed}}}
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def drive(
    route: str, words: list[str], seconds: int, connections: int, rate: float = 0.0
) -> WrkResult:
    """wrk over the queries: flat out, or paced at about `rate` requests/s."""
    from urllib.parse import quote

    paths = [f"{route}?q={quote(w)}" for w in words]
    script = lua_paths(paths)
    if rate:
        script = paced(script, rate)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        return run_wrk(f"http://127.0.0.1:{PORT}", f.name, seconds, connections)
    finally:
        Path(f.name).unlink()


def line(label: str, result: WrkResult) -> str:
    return (
        f"{label:<34} {result.requests_per_second:8.0f} req/s  p50 {result.p50_ms:6.1f} ms"
        f"  p99 {result.p99_ms:7.1f} ms  non-2xx {result.non_2xx}/{result.requests}"
    )


def platform_runs(program: str) -> bool:
    """Whether the platform of `deploy/platform.sh` runs `program` (a caught-up dataflow)."""
    status = subprocess.run(
        ["bash", "deploy/platform.sh", "status"], capture_output=True, text=True, check=False
    ).stdout
    return any(row.split()[:2] == [program, "RUNNING"] for row in status.splitlines())


def freshness(settings: Settings, count: int) -> str:
    """Accepted -> found, through the platform's own search dataflow and relay when it runs
    (caught up on the log, as in service); else through ones started here, which first
    replay the whole log (the warm-up post waits for that)."""
    env = {**os.environ, "RECOVERY_ROOT": tempfile.mkdtemp(prefix="bench-search-recovery-")}
    programs = [] if platform_runs("search") else [["dataflows", "run", "search"], ["api.relay"]]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for args in programs
    ]
    http = httpx.Client(base_url=f"http://127.0.0.1:{PORT}/api/v1", timeout=30)
    try:
        name = f"fresh{new_id()[-10:].lower()}"
        password = "bench-password-1"
        http.post(
            "/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": password},
        ).raise_for_status()
        token = http.post("/auth/login", json={"login": name, "password": password}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        http.post("/communities", json={"name": name}, headers=headers).raise_for_status()

        def post_and_find(word: str, deadline: float) -> float:
            r = http.post(
                f"/communities/{name}/posts",
                json={"title": f"Freshness probe {word}", "kind": "text", "body": "x"},
                headers=headers,
            )
            r.raise_for_status()
            accepted = time.perf_counter()
            while time.perf_counter() < deadline:
                items = http.get("/search", params={"q": word, "community": name}).json()
                if items.get("items"):
                    return time.perf_counter() - accepted
                time.sleep(0.01)
            raise RuntimeError(f"post {word} not found in time")

        # the first post waits for the dataflow to read the log and the community
        post_and_find("warmup" + new_id()[-6:].lower(), time.perf_counter() + 600)
        latencies = []
        for i in range(count):
            word = f"probe{i}x{new_id()[-6:].lower()}"
            latencies.append(post_and_find(word, time.perf_counter() + 60))
        where = "a search dataflow of its own" if programs else "the platform's search dataflow"
        p50 = percentile(latencies, 50) * 1000
        return (
            f"freshness through {where}, over {count} posts: p50 {p50:.0f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


def cleanup(settings: Settings, comms: list[CommunityCreated]) -> None:
    client = store.connect(settings)
    ids = [c.community_id for c in comms]
    for index in store.INDEXES:
        for start in range(0, len(ids), 50):
            chunk = in_filter("community_id", ids[start : start + 50])
            task = client.index(index).delete_documents(filter=chunk)
            client.wait_for_task(task.task_uid, timeout_in_ms=600_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--communities", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--fresh", type=int, default=100)
    args = parser.parse_args()
    settings = get_settings()
    subprocess.run(
        ["bash", "deploy/stack.sh", "createdb", search_baseline.BASELINE_DB],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    t = time.perf_counter()
    comms, posts = corpus(args.posts, args.communities)
    print(
        f"corpus: {len(posts)} posts in {len(comms)} communities ({time.perf_counter() - t:.0f} s)"
    )
    try:
        seconds = build_index(settings, comms, posts)
        print(
            f"index build (search dataflow -> Meilisearch): {seconds:.1f} s, "
            f"{len(posts) / seconds:.0f} posts/s"
        )
        seconds = asyncio.run(load_baseline(settings, posts))
        print(f"baseline load (COPY + GIN index): {seconds:.1f} s")
        words = queries(posts)
        app = start_process(
            ["-m", "benchmarks.search_app", "--port", str(PORT), "--workers", "2"],
            f"http://127.0.0.1:{PORT}/readyz",
            timeout=180,
        )
        try:
            flat_out = {}
            for route in ("/api/v1/search", "/bench/search/ilike", "/bench/search/fts"):
                flat_out[route] = drive(route, words, args.seconds, args.connections)
                print(line(route, flat_out[route]), flush=True)
            ours = flat_out["/api/v1/search"]
            ratio = ours.requests_per_second / flat_out["/bench/search/ilike"].requests_per_second
            print(f"/search vs ILIKE: {ratio:.1f}x the requests/s")
            # Latency where a service runs: below saturation (flat out, it is queueing).
            half = ours.requests_per_second / 2
            calm = drive("/api/v1/search", words, args.seconds, PACED_CONNECTIONS, half)
            print(line(f"/api/v1/search at ~{half:.0f} req/s", calm), flush=True)
            if args.fresh:
                print(freshness(settings, args.fresh), flush=True)
        finally:
            app.terminate()
            app.wait(30)
    finally:
        cleanup(settings, comms)


if __name__ == "__main__":
    main()
