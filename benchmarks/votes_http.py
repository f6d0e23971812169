"""Votes through the HTTP API: throughput, API latency and freshness under load.

    python -m benchmarks.votes_http [--base URL] [--seconds 20] [--connections 64] [--warmup 0]
    python -m benchmarks.votes_http --compare-limiter [--seconds 10] [--rounds 2]
    python -m benchmarks.votes_http --compare-standings [--seconds 10] [--rounds 2]

Needs the platform running (`bash deploy/up.sh`) and `wrk` (apt-get install wrk).
wrk drives PUT /votes from many simulated users (minted tokens) over many posts;
meanwhile a probe votes on posts nobody else touches and polls GET /posts/{id}
until the authoritative tally (written by the votes dataflow) shows its vote:
that interval is the freshness.

`--compare-limiter` measures what the rate limiter costs the vote path: it starts two
API processes of its own on the running stack (dataflows must run to materialise the
seeded posts), one with the limiter on (limits of benchmarks/limits.env, high enough
that no vote is refused) and one with RATE_LIMITS_ENABLED=0, and alternates wrk runs
between them, so both see the same machine and the same Redis.

`--compare-standings` does the same with voters' standings kept in the API processes
(checked by version in the vote script) against KEEP_VOTING_STANDINGS=false (one
Postgres read of the voter's standing per vote).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.common import (
    mint_tokens,
    paced,
    percentile,
    run_wrk,
    seed_posts,
    start_process,
    summary,
)
from benchmarks.cpu import CpuMeter, children_of, cost_table, platform_total, tree_seconds
from stores.settings import get_settings

# How often a probe reads back what its vote changed. Each read is an API request that
# the load's CPU per vote pays for; at 5 ms the two probes' reads were hundreds a second,
# as many as the votes themselves at a low offered rate. 20 ms keeps them a small share,
# for a freshness figure 20 ms coarser at most.
PROBE_POLL = 0.02

LUA = """
local tokens = {%(tokens)s}
local targets = {%(targets)s}
local dirs = {1, -1, 0}
math.randomseed(os.time())
request = function()
  local body = '{"target_id":"' .. targets[math.random(#targets)] ..
    '","target_type":"post","direction":' .. dirs[math.random(3)] .. '}'
  return wrk.format("PUT", "/api/v1/votes", {
    ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)],
    ["Content-Type"] = "application/json"}, body)
end
"""


def vote_script(tokens: list[str], targets: list[str], rate: float = 0) -> str:
    """The wrk script: random users casting random directions on random targets, paced
    to about `rate` votes/s when a rate is given (`benchmarks.common.paced`). CPU per
    vote at a fixed rate below saturation does not move with how saturated a noisy
    machine happens to be, which makes it the figure to compare builds by."""
    script = LUA % {
        "tokens": ",".join(f'"{t}"' for t in tokens),
        "targets": ",".join(f'"{p}"' for p in targets),
    }
    return paced(script, rate) if rate > 0 else script


def freshness_probe(
    base: str, posts: list[str], token: str, stop: threading.Event, out: list[float]
) -> None:
    http = httpx.Client(base_url=f"{base}/api/v1", timeout=10)
    headers = {"Authorization": f"Bearer {token}"}
    direction = 1
    while not stop.is_set():
        for post_id in posts:
            if stop.is_set():
                return
            r = http.put(
                "/votes",
                json={"target_id": post_id, "target_type": "post", "direction": direction},
                headers=headers,
            )
            accepted = time.perf_counter()
            if r.status_code != 200:
                continue
            want = 1 if direction == 1 else 0
            deadline = accepted + 10
            while time.perf_counter() < deadline:
                if http.get(f"/posts/{post_id}").json()["upvotes"] == want:
                    out.append(time.perf_counter() - accepted)
                    break
                time.sleep(PROBE_POLL)
        direction = 0 if direction == 1 else 1


def rank_probe(
    base: str,
    community: str,
    posts: list[str],
    token: str,
    stop: threading.Event,
    out: list[float],
) -> None:
    """Vote accepted -> rank position updated: the probe's vote lifts posts[1] (newer,
    score 0) level with posts[0] (score 1), which puts it first in `top` (ties rank the
    newer post first); withdrawing the vote puts it back second."""
    http = httpx.Client(base_url=f"{base}/api/v1", timeout=10)
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/communities/{community}/posts?sort=top&t=all"
    direction = 1
    while not stop.is_set():
        r = http.put(
            "/votes",
            json={"target_id": posts[1], "target_type": "post", "direction": direction},
            headers=headers,
        )
        accepted = time.perf_counter()
        if r.status_code != 200:
            continue
        want = posts[1] if direction == 1 else posts[0]
        deadline = accepted + 10
        while time.perf_counter() < deadline and not stop.is_set():
            if http.get(path).json()["items"][0]["post_id"] == want:
                out.append(time.perf_counter() - accepted)
                break
            time.sleep(PROBE_POLL)
        direction = 0 if direction == 1 else 1


@dataclass(frozen=True)
class Comparison:
    """Two API configurations told apart by one environment variable."""

    what: str  # e.g. "limiter"
    variable: str
    on: str
    off: str


COMPARISONS = {
    "limiter": Comparison("limiter", "RATE_LIMITS_ENABLED", "1", "0"),
    "standings": Comparison("kept standings", "KEEP_VOTING_STANDINGS", "true", "false"),
}


def compare(args: argparse.Namespace, mode: Comparison) -> None:
    settings = get_settings()
    apis = {}
    procs = []
    for label, value, port in (("on", mode.on, args.port), ("off", mode.off, args.port + 1)):
        base = f"http://127.0.0.1:{port}"
        procs.append(
            start_process(
                ["-m", "api", "--port", str(port), "--workers", str(args.workers)],
                f"{base}/readyz",
                timeout=300,  # a busy machine takes minutes to import and fork
                env={mode.variable: value},
            )
        )
        apis[label] = base
    try:
        seed = seed_posts(apis["on"], args.posts)
        tokens = mint_tokens(settings, args.users)
        rates: dict[str, list[float]] = {"on": [], "off": []}
        refused: dict[str, int] = {"on": 0, "off": 0}
        # CPU of each mode's own API processes per vote: the figure the machine's noise
        # (dataflows catching up on the previous round) does not move.
        api_pids = {"on": procs[0].pid, "off": procs[1].pid}
        api_cpu: dict[str, float] = {"on": 0.0, "off": 0.0}
        api_votes: dict[str, int] = {"on": 0, "off": 0}
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "votes.lua"
            script.write_text(
                LUA
                % {
                    "tokens": ",".join(f'"{t}"' for t in tokens),
                    "targets": ",".join(f'"{p}"' for p in seed.post_ids),
                }
            )
            for round_ in range(args.rounds):
                order = ("on", "off") if round_ % 2 == 0 else ("off", "on")
                for label in order:
                    before = tree_seconds(api_pids[label], children_of())
                    result = run_wrk(apis[label], str(script), args.seconds, args.connections)
                    api_cpu[label] += tree_seconds(api_pids[label], children_of()) - before
                    api_votes[label] += result.requests
                    rates[label].append(result.requests_per_second)
                    refused[label] += result.non_2xx
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
    on, off = (sum(rates[k]) / len(rates[k]) for k in ("on", "off"))
    what = mode.what
    print(
        f"votes via HTTP, {what} on ({mode.variable}={mode.on}) vs off: {args.rounds} "
        f"alternating rounds of {args.seconds}s each, {args.connections} connections, "
        f"{args.workers} API workers, {args.users} users, {args.posts} posts"
    )
    print(f"  {what} on : {on:.0f} votes/s (rounds {[round(r) for r in rates['on']]})")
    print(f"  {what} off: {off:.0f} votes/s (rounds {[round(r) for r in rates['off']]})")
    print(f"  change    : {(on / off - 1) * 100:+.1f}% votes/s with the {what} on")
    per_vote = {k: api_cpu[k] * 1e6 / max(api_votes[k], 1) for k in ("on", "off")}
    print(
        f"  API CPU   : {per_vote['on']:.0f} us per vote on, {per_vote['off']:.0f} us off"
        f" ({(per_vote['on'] / per_vote['off'] - 1) * 100:+.1f}%)"
    )
    key = mode.variable.lower()
    print(
        json.dumps(
            {
                "variable": mode.variable,
                f"{key}_on_votes_per_second": round(on),
                f"{key}_off_votes_per_second": round(off),
                "votes_per_second_change_percent": round((on / off - 1) * 100, 1),
                "api_cpu_us_per_vote_on": round(per_vote["on"]),
                "api_cpu_us_per_vote_off": round(per_vote["off"]),
                "non_2xx_on": refused["on"],
                "non_2xx_off": refused["off"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument(
        "--warmup", type=int, default=0, help="seconds of unmeasured load first (warm caches)"
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--compare-limiter", action="store_true")
    parser.add_argument("--compare-standings", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="offer about this many votes/s instead of as many as the API takes",
    )
    parser.add_argument("--port", type=int, default=8130, help="first of two API ports")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.compare_limiter or args.compare_standings:
        compare(args, COMPARISONS["limiter" if args.compare_limiter else "standings"])
        return
    settings = get_settings()

    seed = seed_posts(args.base, args.posts + 10)
    loaded, probed = seed.post_ids[: args.posts], seed.post_ids[args.posts :]
    ranked = seed_posts(args.base, 2, prefix="rankprobe")
    tokens = mint_tokens(settings, args.users + 3)
    load_tokens, probe_token, rank_token, lift_token = tokens[:-3], *tokens[-3:]
    httpx.put(
        f"{args.base}/api/v1/votes",
        headers={"Authorization": f"Bearer {lift_token}"},
        json={"target_id": ranked.post_ids[0], "target_type": "post", "direction": 1},
    ).raise_for_status()
    fresh: list[float] = []
    ranks: list[float] = []
    stop = threading.Event()
    probes = [
        threading.Thread(
            target=freshness_probe, args=(args.base, probed, probe_token, stop, fresh)
        ),
        threading.Thread(
            target=rank_probe,
            args=(args.base, ranked.community, ranked.post_ids, rank_token, stop, ranks),
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "votes.lua"
        script.write_text(vote_script(load_tokens, loaded, args.rate))
        if args.warmup > 0:  # every user's first votes (cold per-process caches) unmeasured
            run_wrk(args.base, str(script), args.warmup, args.connections)
        for probe in probes:
            probe.start()
        meter = CpuMeter()
        meter.start()
        result = run_wrk(args.base, str(script), args.seconds, args.connections)
        spent = meter.stop()
        stop.set()
        for probe in probes:
            probe.join()

    offered = f", offered {args.rate:.0f} votes/s" if args.rate > 0 else ""
    print(
        f"votes via HTTP, {args.seconds}s after {args.warmup}s of warm-up, "
        f"{args.connections} connections, {args.users} users, {args.posts} posts{offered}"
    )
    print(
        f"  accepted votes/s : {result.requests_per_second:.0f} "
        f"({result.requests} requests, {result.non_2xx} non-2xx)"
    )
    print(f"  API latency      : p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms")
    accepted = result.requests - result.non_2xx
    print(f"  freshness (tally): {summary(fresh)}")
    print(f"  freshness (rank) : {summary(ranks)}")
    print(cost_table(spent, accepted))
    print(
        json.dumps(
            {
                "votes_per_second": round(result.requests_per_second),
                "offered_votes_per_second": round(args.rate) if args.rate > 0 else None,
                "cpu_us_per_vote": round(platform_total(spent, accepted), 1),
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "non_2xx": result.non_2xx,
                "freshness_p50_ms": round(percentile(fresh, 50) * 1000, 1),
                "freshness_p99_ms": round(percentile(fresh, 99) * 1000, 1),
                "freshness_samples": len(fresh),
                "rank_freshness_p50_ms": round(percentile(ranks, 50) * 1000, 1),
                "rank_freshness_p99_ms": round(percentile(ranks, 99) * 1000, 1),
                "rank_freshness_samples": len(ranks),
            }
        )
    )


if __name__ == "__main__":
    main()
