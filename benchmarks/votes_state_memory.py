"""Memory the votes dataflow holds per million votes.

    python -m benchmarks.votes_state_memory [--votes 1000000] [--targets 10000] [--users 100000]

Feeds synthetic vote events through the dataflow's own stateful logic (`TallyFold`)
and measures the Python heap it retains (tracemalloc) and the pickled snapshot size.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import random
import time
import tracemalloc
from datetime import timedelta

from dataflows.votes import TallyFold
from domain.ids import new_id, new_post_id
from schemas.events import VoteCast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(1)
    community = new_id()
    targets = [new_post_id(community) for _ in range(args.targets)]
    users = [new_id() for _ in range(args.users)]
    # Events are made inside the traced loop and dropped after use, as in the dataflow:
    # what stays allocated is what the state retains (user id strings included).
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    logics: dict[str, TallyFold] = {}
    started = time.perf_counter()
    for i in range(args.votes):
        user = rng.choice(users)
        event = VoteCast.model_construct(
            user_id=user[:13] + user[13:],
            target_id=rng.choice(targets),
            target_type="post",
            community_id=community,
            author_id="a",
            direction=rng.choice((1, -1, 0)),
            previous=0,
            version=i + 1,
        )
        logic = logics.get(event.target_id)
        if logic is None:
            logic = logics[event.target_id] = TallyFold(None, timedelta(days=180))
        logic.apply(event)
    elapsed = time.perf_counter() - started
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    voters = sum(len(lg.state.tally.voters) for lg in logics.values() if lg.state)
    snapshot = sum(len(pickle.dumps(lg.snapshot())) for lg in logics.values())
    per_million = held / args.votes * 1_000_000
    print(
        f"{args.votes} votes, {args.targets} targets, {args.users} users -> "
        f"{voters} (voter, target) pairs held"
    )
    print(
        f"  state held        : {held / 2**20:.1f} MiB "
        f"({per_million / 2**20:.1f} MiB per million votes, {held / voters:.0f} B per pair)"
    )
    print(f"  snapshot (pickle) : {snapshot / 2**20:.1f} MiB")
    print(
        f"  apply rate        : {args.votes / elapsed:,.0f} votes/s in one worker "
        "(event construction included)"
    )


if __name__ == "__main__":
    main()
