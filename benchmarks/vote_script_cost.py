"""What the vote script costs Redis per vote, and which part of it.

    python -m benchmarks.vote_script_cost [--batches 2000] [--batch 32] [--rounds 3]

The API sends concurrent votes to Redis together: one call of the batched vote script
(`stores.redis_store.many_casts_source`) carries every vote of the batch, each taking
the voter's rate-limit buckets and recording the vote. This runs that script alone
against the stack's Redis, with random voters, directions and targets (fresh votes
each round, so most change something, as under `votes_http`), and reads the Redis
server's CPU time from `/proc` around each round. Three variants, rounds alternating:

- `vote script`: as the API sends it, two buckets per vote (user writes and votes);
- `without buckets`: the same votes taking no bucket;
- `framing only`: the batch's parsing, unpacking and answer with an empty vote body.

It also times the API's side of one such call: packing its arguments into the wire
format, by redis-py's asyncio connection (Python) and by `PackedConnection` (hiredis).

Needs the local stack (`bash deploy/stack.sh up`) on this machine. The keys it writes
are its own (a community and targets of fresh ids) and are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import cast

import redis
import redis.asyncio as aioredis

from domain.ids import new_id
from domain.rate_limits import Charge, Limit
from stores import rate_limits
from stores.reader_votes import reader_votes_key
from stores.redis_store import (
    Ballot,
    Cast,
    PackedConnection,
    many_casts_call,
    many_casts_source,
    script_source,
    sync_client,
    target_key,
    unsettled_key,
    voters_key,
)
from stores.settings import get_settings

TARGETS = 200
USERS = 2000
LIMITS = (Limit("bench_user_write", 100_000_000, 60.0), Limit("bench_vote", 100_000_000, 60.0))
EMPTY_CAST = "return {0, 0, 0, 0, 0, '', '', 1, 0, 0, 0, 0}"


@dataclass(frozen=True)
class Variant:
    name: str
    source: str
    buckets: bool


def variants() -> list[Variant]:
    full = many_casts_source()
    body = script_source("cast_vote")
    if body not in full:
        raise RuntimeError("the batched script no longer embeds cast_vote.lua whole")
    return [
        Variant("vote script", full, True),
        Variant("without buckets", full, False),
        Variant("framing only", full.replace(body, EMPTY_CAST), True),
    ]


def redis_cpu_seconds(client: redis.Redis) -> Callable[[], float]:
    """A reader of the Redis server's user + system CPU time (it runs on this box)."""
    server = cast(dict[str, int], client.info("server"))
    stat = Path(f"/proc/{int(server['process_id'])}/stat")
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    return read


class Votes:
    """Random votes on this run's own targets, as the API would batch them."""

    def __init__(self, client: redis.Redis, rng: random.Random) -> None:
        self.rng = rng
        self.community = f"bench{new_id()}"
        self.targets = [new_id() for _ in range(TARGETS)]
        self.users = [new_id() for _ in range(USERS)]
        for t in self.targets:
            client.hset(
                target_key(t),
                mapping={"c": self.community, "a": new_id(), "up": 0, "dn": 0, "v": 0},
            )

    def batch(self, size: int, buckets: bool) -> Cast:
        casts = []
        for _ in range(size):
            target, user = self.rng.choice(self.targets), self.rng.choice(self.users)
            charges = [Charge(limit, user) for limit in LIMITS] if buckets else []
            direction = self.rng.choice((1, -1, 0))
            casts.append(Ballot(target, user, direction, charges, self.community, True).call())
        return many_casts_call(casts)

    def delete(self, client: redis.Redis) -> None:
        keys = [k(t) for t in self.targets for k in (target_key, voters_key, unsettled_key)]
        keys += [reader_votes_key(u) for u in self.users]
        keys += [rate_limits.bucket_key(limit.name, u) for u in self.users for limit in LIMITS]
        for at in range(0, len(keys), 1000):
            client.delete(*keys[at : at + 1000])


def packing_us(args: list[str | int | float], number: int = 2000) -> dict[str, float]:
    """µs to pack one EVALSHA of the batch, per packer (best of five)."""
    call = ("EVALSHA", "0" * 40, *args)
    packers = {"redis-py": aioredis.Connection(), "hiredis": PackedConnection()}
    timings: dict[str, float] = {}
    for name, conn in packers.items():
        best = min(timeit.repeat(partial(conn.pack_command, *call), number=number, repeat=5))
        timings[name] = best / number * 1e6
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=2000, help="calls per round")
    parser.add_argument("--batch", type=int, default=32, help="votes per call")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    client = sync_client(get_settings().redis_url)
    cpu = redis_cpu_seconds(client)
    votes = Votes(client, random.Random(7))
    scripts = [(v, client.register_script(v.source)) for v in variants()]
    spent: dict[str, list[float]] = {v.name: [] for v, _ in scripts}
    keys, argv = votes.batch(args.batch, True)
    packing = packing_us([len(keys), *keys, *argv])
    try:
        for variant, script in scripts:  # warm: the voters' hashes exist, scripts loaded
            for _ in range(max(1, args.batches // 10)):
                keys, argv = votes.batch(args.batch, variant.buckets)
                script(keys=keys, args=argv)
        for _ in range(args.rounds):
            for variant, script in scripts:
                calls = [votes.batch(args.batch, variant.buckets) for _ in range(args.batches)]
                before = cpu()
                for keys, argv in calls:
                    script(keys=keys, args=argv)
                spent[variant.name].append((cpu() - before) / (args.batches * args.batch) * 1e6)
    finally:
        votes.delete(client)
    print(
        f"Redis CPU per vote (µs), batches of {args.batch}, {args.batches} calls a round, "
        f"{args.rounds} rounds alternating (median, then each round):"
    )
    for name, figures in spent.items():
        each = ", ".join(f"{f:.1f}" for f in figures)
        print(f"  {name:<16} {statistics.median(figures):6.1f}   ({each})")
    print(f"Packing one call of {args.batch} votes in the API (µs, best of five):")
    for name, us in packing.items():
        print(f"  {name:<16} {us:6.1f}   ({us / args.batch:.1f} per vote)")


if __name__ == "__main__":
    main()
