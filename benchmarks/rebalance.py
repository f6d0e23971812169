"""Shard rebalancing under load: how fast a move goes, and what the API's readers see.

    python -m benchmarks.rebalance [--base URL] [--communities 200] [--posts 25]
                                   [--shard posts_shard_2] [--batch-size 200]

Needs the platform running (`bash deploy/up.sh`). Seeds communities with posts and
votes through the API, drains SHARD first if it is in the ring (measured too), then
runs `python -m stores.rebalance add-shard SHARD` while reader threads call
GET /posts/{id} and GET /communities/{name}/posts and voters keep voting. Prints the
command's own figures, the reads and votes made during the move, errors and latency.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.common import mint_tokens, summary
from domain.ids import new_id
from stores.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Load:
    base: str
    communities: list[str]
    posts: list[str]
    tokens: list[str]
    stop: threading.Event = field(default_factory=threading.Event)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    votes: int = 0

    def reader(self, seed: int) -> None:
        rng, http = random.Random(seed), httpx.Client(base_url=f"{self.base}/api/v1", timeout=10)
        while not self.stop.is_set():
            for path in (
                f"/posts/{rng.choice(self.posts)}",
                f"/communities/{rng.choice(self.communities)}/posts",
            ):
                started = time.perf_counter()
                r = http.get(path)
                self.latencies.append(time.perf_counter() - started)
                if r.status_code != 200:
                    self.errors.append(f"{r.status_code} GET {path}")

    def voter(self, seed: int) -> None:
        rng, http = random.Random(seed), httpx.Client(base_url=f"{self.base}/api/v1", timeout=10)
        while not self.stop.is_set():
            r = http.put(
                "/votes",
                json={
                    "target_id": rng.choice(self.posts),
                    "target_type": "post",
                    "direction": rng.choice((1, -1, 0)),
                },
                headers={"Authorization": f"Bearer {rng.choice(self.tokens)}"},
            )
            self.votes += 1
            if r.status_code != 200:
                self.errors.append(f"{r.status_code} PUT /votes")

    def window(self) -> tuple[list[float], int, int]:
        """Latencies, errors and votes so far (to diff around the move)."""
        return list(self.latencies), len(self.errors), self.votes


def seed(base: str, communities: int, posts: int) -> tuple[list[str], list[str]]:
    http = httpx.Client(base_url=f"{base}/api/v1", timeout=30)
    name, password = f"rb{new_id()[-10:].lower()}", "bench-password"
    http.post(
        "/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": password},
    ).raise_for_status()
    token = http.post("/auth/login", json={"login": name, "password": password}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    names = [f"rb{new_id()[-12:].lower()}" for _ in range(communities)]

    def create(community: str) -> list[str]:
        client = httpx.Client(base_url=f"{base}/api/v1", timeout=30)
        client.post("/communities", json={"name": community}, headers=headers).raise_for_status()
        ids = []
        for i in range(posts):
            r = client.post(
                f"/communities/{community}/posts", json={"title": f"p{i}"}, headers=headers
            )
            r.raise_for_status()
            ids.append(r.json()["post_id"])
        return ids

    with ThreadPoolExecutor(8) as pool:
        post_ids = [p for ids in pool.map(create, names) for p in ids]
    deadline = time.monotonic() + 300
    for post_id in post_ids:
        while http.get(f"/posts/{post_id}").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("posts were not materialised within 300 s")
            time.sleep(0.05)
    return names, post_ids


def rebalance(*args: str) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "ops.shards", *args, "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"rebalance {args} failed: {result.stderr[-2000:]}")
    return time.monotonic() - started, "\n".join(result.stdout.strip().splitlines()[-2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--communities", type=int, default=200)
    parser.add_argument("--posts", type=int, default=25)
    parser.add_argument("--shard", default="posts_shard_2")
    parser.add_argument("--batch-size", default="200")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--voters", type=int, default=2)
    args = parser.parse_args()

    started = time.monotonic()
    names, posts = seed(args.base, args.communities, args.posts)
    print(
        f"seeded {len(names)} communities, {len(posts)} posts in {time.monotonic() - started:.0f}s"
    )
    load = Load(args.base, names, posts, mint_tokens(get_settings(), 50))
    threads = [
        threading.Thread(target=load.reader, args=(i,), daemon=True) for i in range(args.readers)
    ] + [
        threading.Thread(target=load.voter, args=(100 + i,), daemon=True)
        for i in range(args.voters)
    ]
    for t in threads:
        t.start()
    time.sleep(5)  # a baseline window of load before any move
    baseline, _errors, _votes = load.window()
    print(f"reads before the move: {summary(baseline)}")

    for command in ("remove-shard", "add-shard"):
        lat0, err0, votes0 = load.window()
        seconds, line = rebalance(command, args.shard, "--batch-size", args.batch_size)
        lat1, err1, votes1 = load.window()
        during = lat1[len(lat0) :]
        print(line)
        print(
            f"  during the move ({seconds:.1f}s): reads {summary(during)},"
            f" votes {votes1 - votes0}, errors {err1 - err0}"
        )
    load.stop.set()
    for t in threads:
        t.join(15)
    if load.errors:
        print(f"errors: {load.errors[:10]}")


if __name__ == "__main__":
    main()
