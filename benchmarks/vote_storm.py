"""Hot-post vote storm: thousands of users voting on one post, the platform's pipeline
against a Lemmy-style design, behind the same HTTP stack, same run.

    python -m benchmarks.vote_storm [--users 2000] [--rounds 5] [--connections 64]
                                    [--warmup-rounds 3]

Needs the local stack and the dataflows running (`bash deploy/up.sh`) and wrk.
Every user votes once per round, rounds run one after another, and the direction of
user u in round r is fixed, so both designs see the same per-user sequence and must
end with identical tallies (half up, half down). The platform's rate is counted both
at the API and end to end (until the votes dataflow's tally is final); the
baseline's transaction is final when it answers.

Both designs are warmed the same way before they are timed: the same users storm a
second post for `--warmup-rounds` rounds (default 3). Each API worker process caches a
user's verified token, account state and standing on first sight, and a vote lands on
either of the two workers, so after one round each worker has seen about half of the
users and after three about 7 in 8. Without it the platform, timed first, paid those
first sights (a signature check and two database reads each) while the baseline, timed
after it, found them cached. `--warmup-rounds 1` measures a crowd half new to each
worker. The warm-up post is not the one whose tallies are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import asyncpg
import httpx

from benchmarks.bench_app import NOOP_PATH
from benchmarks.common import ensure_baseline_db, mint_tokens, seed_posts, start_bench_app
from benchmarks.cpu import BENCHMARK, LOAD_GENERATOR, CpuMeter, cost_table, platform_total
from benchmarks.feed_reads import shard_rows
from benchmarks.lemmy_baseline import BASELINE_DB, copy_posts, load_schema
from stores.settings import get_settings

PORT = 8100
EVEN = (1, -1, 0, -1, 1)  # directions by round for even users: they end up
ODD = (-1, 1, 1, 0, -1)  # ... and odd users end down


# One round of the storm for wrk: thread t (of `threads`) sends the plan's entries t+1,
# t+1+threads, ...; once its share is sent it sends GETs of a route that answers 204 at
# once (one per connection every 100 ms), so every connection stays open until the
# thread has every vote's answer. Then it prints its count and stops; wrk itself runs
# its whole -d, so the benchmark ends it (SIGINT) once every thread has printed.
ROUND_TIMEOUT_SECONDS = 300
ROUND_LUA = """
local plan = {%(plan)s}
local threads = %(threads)d
local count = 0
setup = function(thread)
  thread:set("id", count)
  count = count + 1
end
init = function(args)
  next_entry = id + 1
  answered = 0
  refused = 0
  mine = 0
  verified = false
  for i = id + 1, #plan, threads do mine = mine + 1 end
end
request = function()
  if not verified then
    -- wrk calls request() once on thread 0's state to check the script, and never
    -- sends what it returns: that call must not take a vote off the plan.
    verified = true
    if id == 0 then return wrk.format("GET", "%(noop)s") end
  end
  if next_entry > #plan then
    return wrk.format("GET", "%(noop)s")
  end
  local entry = plan[next_entry]
  next_entry = next_entry + threads
  return wrk.format("PUT", "%(path)s", {
    ["Authorization"] = "Bearer " .. entry[1],
    ["Content-Type"] = "application/json"},
    '{"target_id":"%(post)s","target_type":"post","direction":' .. entry[2] .. '}')
end
delay = function()
  -- Fillers only keep connections open while the last votes are answered: slowly,
  -- so they take no CPU from the design under test.
  if next_entry > #plan then return 100 end
  return 0
end
response = function(status, headers, body)
  if status == 204 then return end
  answered = answered + 1
  if status ~= 200 then refused = refused + 1 end
  if answered == mine then
    io.write(string.format("STORM answered=%%d refused=%%d\\n", answered, refused))
    io.stdout:flush()
    wrk.thread:stop()
  end
end
"""


def round_script(path: str, post_id: str, plan: list[tuple[str, int]], threads: int) -> str:
    listed = ",".join(f'{{"{token}",{direction}}}' for token, direction in plan)
    return ROUND_LUA % {
        "plan": listed,
        "threads": threads,
        "noop": NOOP_PATH,
        "path": path,
        "post": post_id,
    }


def run_round(url: str, script: Path, connections: int, threads: int, votes: int) -> None:
    """Send every vote of the round once; raise unless each was answered 200."""
    wrk = subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", "-d600s", "-s", str(script), url],
        stdout=subprocess.PIPE,
        text=True,
    )
    answered = refused = finished = 0
    # A vote that never got an answer would leave wrk running its whole -d.
    watchdog = threading.Timer(ROUND_TIMEOUT_SECONDS, wrk.kill)
    watchdog.start()
    assert wrk.stdout is not None
    for line in wrk.stdout:
        found = re.match(r"STORM answered=(\d+) refused=(\d+)", line)
        if found:
            answered += int(found.group(1))
            refused += int(found.group(2))
            finished += 1
            if finished == threads:
                wrk.send_signal(signal.SIGINT)
    watchdog.cancel()
    if wrk.wait() != 0 or finished != threads:
        raise RuntimeError(f"wrk exited {wrk.returncode} with {finished} of {threads} threads")
    if answered != votes or refused:
        raise RuntimeError(f"{answered} of {votes} votes answered, {refused} refused")


def storm(
    base: str, path: str, post_id: str, tokens: list[str], rounds: int, connections: int
) -> float:
    """Seconds to run every round; each user's votes keep their order across rounds.
    The scripts are written first, so only wrk's runs are timed."""
    threads = 2
    if len(tokens) < threads:
        raise ValueError(f"a storm needs at least {threads} users, one per wrk thread")
    with tempfile.TemporaryDirectory() as tmp:
        scripts = []
        for r in range(rounds):
            plan = [(t, direction(u, r)) for u, t in enumerate(tokens)]
            script = Path(tmp) / f"round{r}.lua"
            script.write_text(round_script(path, post_id, plan, threads))
            scripts.append(script)
        started = time.perf_counter()
        for script in scripts:
            run_round(base, script, connections, threads, len(tokens))
        return time.perf_counter() - started


def direction(user: int, round_: int) -> int:
    return (EVEN if user % 2 == 0 else ODD)[round_ % len(EVEN)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup-rounds", type=int, default=3)
    args = parser.parse_args()
    settings = get_settings()
    ensure_baseline_db()
    app = start_bench_app(PORT)
    base = f"http://127.0.0.1:{PORT}"
    try:
        seed = seed_posts(base, 2, prefix="storm")
        post_id, warmup_id = seed.post_ids

        async def baseline_setup() -> None:
            conn = await asyncpg.connect(settings.dsn(BASELINE_DB))
            try:
                await load_schema(conn)
                await copy_posts(conn, await shard_rows(settings, [post_id, warmup_id]))
            finally:
                await conn.close()

        asyncio.run(baseline_setup())
        tokens = mint_tokens(settings, args.users)
        votes = args.users * args.rounds

        def warm_up(path: str) -> None:
            if args.warmup_rounds > 0:
                storm(base, path, warmup_id, tokens, args.warmup_rounds, args.connections)

        warm_up("/api/v1/votes")
        meter = CpuMeter()
        meter.start({"bench app (API)": app.pid})
        ours_api = storm(base, "/api/v1/votes", post_id, tokens, args.rounds, args.connections)
        finals = [direction(u, args.rounds - 1) for u in range(args.users)]
        final_up, final_down = finals.count(1), finals.count(-1)
        deadline = time.monotonic() + 120
        started = time.monotonic()
        while True:
            post = httpx.get(f"{base}/api/v1/posts/{post_id}").json()
            if (post["upvotes"], post["downvotes"]) == (final_up, final_down):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"platform tally stuck at {post}")
            time.sleep(0.02)
        ours_e2e = ours_api + (time.monotonic() - started)
        ours_cpu = meter.stop()

        warm_up("/bench/lemmy/votes")
        meter.start({"bench app (API)": app.pid})
        theirs = storm(base, "/bench/lemmy/votes", post_id, tokens, args.rounds, args.connections)
        # the baseline design is the app and Postgres; the platform's idle processes
        # are not part of it
        theirs_cpu = {
            name: seconds
            for name, seconds in meter.stop().items()
            if name in ("bench app (API)", "postgres", LOAD_GENERATOR, BENCHMARK)
        }

        async def baseline_tally() -> tuple[int, int, int]:
            conn = await asyncpg.connect(settings.dsn(BASELINE_DB))
            try:
                row = await conn.fetchrow(
                    "SELECT upvotes, downvotes FROM post_aggregates WHERE post_id = $1", post_id
                )
                karma = await conn.fetchval("SELECT sum(post_score) FROM person_aggregates")
                return row["upvotes"], row["downvotes"], int(karma)
            finally:
                await conn.close()

        b_up, b_down, b_karma = asyncio.run(baseline_tally())
        identical = (b_up, b_down) == (final_up, final_down)
        print(
            f"vote storm: {args.users} users x {args.rounds} rounds = {votes} votes on one "
            f"post, {args.connections} connections"
        )
        print(f"  platform, accepted at the API : {votes / ours_api:8.0f} votes/s")
        print(f"  platform, tally final (e2e)   : {votes / ours_e2e:8.0f} votes/s")
        print(f"  baseline (upsert + triggers)  : {votes / theirs:8.0f} votes/s")
        print(
            f"  ratio platform/baseline       : {theirs / ours_api:.2f}x at the API, "
            f"{theirs / ours_e2e:.2f}x end to end"
        )
        print(
            f"  final tallies: platform {final_up}/{final_down} (dataflow, read via API), "
            f"baseline {b_up}/{b_down} (karma {b_karma}) -> "
            f"{'identical' if identical else 'DIFFERENT'}"
        )
        print("CPU, platform (until the tally is final):")
        print(cost_table(ours_cpu, votes))
        print("CPU, baseline:")
        print(cost_table(theirs_cpu, votes))
        print(
            json.dumps(
                {
                    "votes": votes,
                    "platform_cpu_us_per_vote": round(platform_total(ours_cpu, votes), 1),
                    "baseline_cpu_us_per_vote": round(platform_total(theirs_cpu, votes), 1),
                    "platform_api_vps": round(votes / ours_api),
                    "platform_e2e_vps": round(votes / ours_e2e),
                    "baseline_vps": round(votes / theirs),
                    "identical": identical,
                }
            )
        )
    finally:
        app.terminate()
        app.wait(30)


if __name__ == "__main__":
    main()
