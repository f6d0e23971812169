"""What a dataflow pays to decode one record, per event type.

    python -m benchmarks.decode_cost [--rounds 7] [--number 20000]

Every dataflow decodes each record it reads (`dataflows.common.decode_event`: the
envelope, the typed payload, the id checks), and a vote is read by several flows, so
this is paid several times per vote. Each event type is timed two ways in the same
run, alternating: as the log holds it (no backslash, no control byte: the fields need
no control-character look) and with that look forced, which is what a record with any
escape in it costs. Figures are the best round's µs per record.
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from dataflows.common import decode_event
from domain.ids import new_id, new_post_id
from schemas import envelope
from schemas.envelope import encode, new_event
from schemas.events import Payload, PostCreated, ScoreChanged, VoteCast


def samples() -> dict[str, tuple[Payload, str]]:
    community = new_id()
    post = new_post_id(community)
    author = new_id()
    return {
        "vote.cast": (
            VoteCast(
                user_id=new_id(),
                target_id=post,
                target_type="post",
                community_id=community,
                author_id=author,
                direction=1,
                previous=0,
                version=3,
            ),
            post,
        ),
        "score.changed": (
            ScoreChanged(
                target_id=post,
                target_type="post",
                community_id=community,
                author_id=author,
                upvotes=5,
                downvotes=2,
                score=3,
                seq=9,
                version=9,
            ),
            post,
        ),
        "post.created": (
            PostCreated(
                post_id=post,
                community_id=community,
                community_name="pythonclub",
                author_id=author,
                author_name="someone",
                title="A title of a usual length for a post here",
                body="A body of a few sentences. " * 8,
                kind="text",
                created_at=datetime.now(UTC),
            ),
            community,
        ),
    }


def best(fn: Callable[[], object], number: int, rounds: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=rounds)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()
    screen = envelope.could_hold_control
    patched: Any = envelope  # decode looks the screen up by name: replace it for a while
    results: dict[str, dict[str, float]] = {}
    for name, (payload, key) in samples().items():
        raw = encode(new_event(payload, key=key))
        assert not screen(raw), "a sample record must need no control-character look"
        one = partial(decode_event, raw)
        plain = best(one, args.number, args.rounds)
        patched.could_hold_control = lambda _raw: True  # force the look
        try:
            looked = best(one, args.number, args.rounds)
        finally:
            patched.could_hold_control = screen
        results[name] = {"screened_us": round(plain, 2), "looked_us": round(looked, 2)}
        print(f"{name:14} {len(raw):5} bytes  screened {plain:6.2f} µs  looked {looked:6.2f} µs")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
