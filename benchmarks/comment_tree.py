"""Comment tree reads for a post with 5,000 comments.

    python -m benchmarks.comment_tree [--base URL] [--comments 5000] [--requests 300]

Needs the platform running (`bash deploy/up.sh`). Seeds one post through the API
with a realistic thread (five levels, most comments near the top, a few thousand
votes on them), waits until the content dataflow has materialised it in CQL, then
times GET /posts/{id}/comments: the default view (best, depth 3, 25 per level), the
whole tree (depth 10, 100 per level), a subtree loaded on demand, and the default
view under 8 concurrent readers. The API caches a thread for a second per process;
the uncached read (both CQL partitions, no HTTP) is timed on its own too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from benchmarks.common import mint_tokens, percentile, seed_posts, summary
from domain.ids import post_of_comment
from stores import cql
from stores.comments import CommentStore, count_materialised
from stores.settings import get_settings

# share of the comments at each depth (top level first)
SHAPE = (0.2, 0.4, 0.24, 0.1, 0.06)


def wait_until(check: Callable[..., bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def seed_thread(
    base: str, total: int, tokens: list[str], votes: int, rng: random.Random
) -> tuple[str, dict[str, str | None]]:
    """A post with `total` comments in waves by depth; returns its id and each comment's
    parent."""
    seed = seed_posts(base, 1, prefix="tree")
    post_id = seed.post_ids[0]
    http = httpx.Client(base_url=f"{base}/api/v1", timeout=30)
    settings = get_settings()
    cluster, session = cql.connect(settings)
    levels: list[list[str]] = []
    parent_of: dict[str, str | None] = {}
    made = 0
    try:
        for depth, share in enumerate(SHAPE):
            count = total - made if depth == len(SHAPE) - 1 else round(total * share)
            parents: list[str | None] = list(levels[-1]) if levels else [None]

            def post(i: int, parents: list[str | None] = parents) -> str:
                body: dict[str, object] = {"body": f"comment {i} " + "lorem ipsum " * 8}
                parent = rng.choice(parents)
                if parent is not None:
                    body["parent_id"] = parent
                headers = {"Authorization": f"Bearer {rng.choice(tokens)}"}
                r = http.post(f"/posts/{post_id}/comments", json=body, headers=headers)
                r.raise_for_status()
                comment_id = str(r.json()["comment_id"])
                parent_of[comment_id] = parent
                return comment_id

            with ThreadPoolExecutor(16) as pool:
                levels.append(list(pool.map(post, range(count))))
            made += count
            wait_until(
                lambda made=made: count_materialised(session, post_id) >= made, f"{made} comments"
            )
            print(f"  depth {depth}: {count} comments (total {made})", flush=True)
    finally:
        cluster.shutdown()
    everyone = [c for level in levels for c in level]

    def vote(i: int) -> int:
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        target = everyone[int(rng.paretovariate(1.2)) % len(everyone)]
        body = {"target_id": target, "target_type": "comment", "direction": rng.choice((1, 1, -1))}
        return http.put("/votes", json=body, headers=headers).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(vote, range(votes)))
    print(f"  votes: {statuses.count(200)} accepted", flush=True)
    assert post_of_comment(everyone[0]) == post_id
    return post_id, parent_of


Params = dict[str, str | int]


def timed(http: httpx.Client, url: str, params: Params, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        r = http.get(url, params=params)
        samples.append(time.perf_counter() - started)
        r.raise_for_status()
    return samples


async def time_store_reads(post_id: str, n: int) -> list[float]:
    cluster, session = cql.connect(get_settings())
    store = CommentStore(session, cache_seconds=0)
    samples = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            comments = await store.thread(post_id)
            samples.append(time.perf_counter() - started)
            assert comments
    finally:
        cluster.shutdown()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--comments", type=int, default=5000)
    parser.add_argument("--votes", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(5)
    tokens = mint_tokens(get_settings(), 200)
    print(f"seeding a post with {args.comments} comments", flush=True)
    started = time.perf_counter()
    post_id, parent_of = seed_thread(args.base, args.comments, tokens, args.votes, rng)
    print(f"  seeded in {time.perf_counter() - started:.0f}s")

    http = httpx.Client(base_url=f"{args.base}/api/v1", timeout=30)
    url = f"/posts/{post_id}/comments"
    busiest = Counter(p for p in parent_of.values() if p is not None).most_common(1)[0][0]
    views: dict[str, Params] = {
        "default (best, depth 3, limit 25)": {"sort": "best"},
        "whole tree (depth 10, limit 100)": {"sort": "best", "depth": 10, "limit": 100},
        "subtree on demand (parent_id)": {"sort": "top", "parent_id": busiest},
    }
    for params in views.values():
        timed(http, url, params, 10)  # warm up
    results = {}
    for name, params in views.items():
        samples = timed(http, url, params, args.requests)
        results[name] = samples
        size = len(http.get(url, params=params).content)
        print(f"  {name:36s} {summary(samples)}  ({size / 1024:.0f} KiB)")

    def reader(_i: int) -> list[float]:
        client = httpx.Client(base_url=f"{args.base}/api/v1", timeout=30)
        return timed(client, url, {"sort": "best"}, args.requests // 4)

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        concurrent = [s for batch in pool.map(reader, range(8)) for s in batch]
    elapsed = time.perf_counter() - started
    print(
        f"  {'default view, 8 concurrent readers':36s} {summary(concurrent)}"
        f"  {len(concurrent) / elapsed:.0f} req/s"
    )
    uncached = asyncio.run(time_store_reads(post_id, args.requests // 3))
    print(f"  {'uncached CQL read of the thread':36s} {summary(uncached)}")
    default = results["default (best, depth 3, limit 25)"]
    print(
        json.dumps(
            {
                "comments": args.comments,
                "default_p50_ms": round(percentile(default, 50) * 1000, 1),
                "default_p99_ms": round(percentile(default, 99) * 1000, 1),
                "concurrent_p99_ms": round(percentile(concurrent, 99) * 1000, 1),
                "concurrent_rps": round(len(concurrent) / elapsed),
                "uncached_read_p50_ms": round(percentile(uncached, 50) * 1000, 1),
                "uncached_read_p99_ms": round(percentile(uncached, 99) * 1000, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
