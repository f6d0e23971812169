"""Crash recovery and replay of the votes dataflow against a recomputation from the log."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.log_tallies import recompute
from tests.processes import ROOT, wait_for

pytestmark = pytest.mark.slow
RETRIES_AFTER_503 = 10


@pytest.fixture(scope="module")
def voting_world(client):
    author = client.register("world")
    community = client.community(author)
    posts = [client.post(author, community, f"target {i}") for i in range(6)]
    voters = [client.register("v") for _ in range(24)]
    return posts, voters


def stored_tallies(client, posts):
    return {p: (client.get_post(p)["upvotes"], client.get_post(p)["downvotes"]) for p in posts}


def vote_stream(client, posts, voters, count: int, seed: int) -> int:
    rng = random.Random(seed)
    plan = [(rng.choice(voters), rng.choice(posts), rng.choice((1, 0, -1))) for _ in range(count)]

    def cast(item):
        """A 503 (the broker's acknowledgement late on a starved machine) says to retry
        after `Retry-After`: a client does, and the vote must then be accepted."""
        user, post, direction = item
        for _ in range(RETRIES_AFTER_503):
            r = client.vote(user, post, direction)
            if r.status_code != 503:
                break
            time.sleep(min(float(r.headers.get("retry-after", "1")), 1.0))
        return r.status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(cast, plan))
    assert set(statuses) == {200}
    return len(statuses)


def test_kill_9_during_a_vote_stream_loses_and_doubles_nothing(
    client, platform, settings, voting_world
):
    posts, voters = voting_world
    votes_flow = platform.flows["votes"]
    done = threading.Event()
    sent: list[int] = []

    def stream() -> None:
        sent.append(vote_stream(client, posts, voters, 1500, seed=1))
        done.set()

    worker = threading.Thread(target=stream)
    worker.start()
    # Kill once tallies are visibly moving, i.e. mid-stream.
    wait_for(
        lambda: any(sum(t) for t in stored_tallies(client, posts).values()),
        timeout=30,
        what="first tallies",
    )
    assert not done.is_set(), "the stream ended before the kill; make it longer"
    votes_flow.kill9()
    restarted = platform.restart_flow("votes")
    worker.join(120)
    assert sent == [1500]

    expected = recompute(settings.kafka_bootstrap, set(posts))
    wait_for(
        lambda: stored_tallies(client, posts) == expected,
        timeout=60,
        what=f"tallies to equal the recomputation {expected}",
    )
    assert restarted.alive(), restarted.log_tail()


def test_replay_rebuilds_the_same_tallies(client, platform, settings, voting_world):
    posts, voters = voting_world
    vote_stream(client, posts, voters, 200, seed=2)
    expected = recompute(settings.kafka_bootstrap, set(posts))
    wait_for(
        lambda: stored_tallies(client, posts) == expected,
        timeout=30,
        what="live tallies before the replay",
    )

    platform.flows["votes"].stop()
    result = subprocess.run(
        [sys.executable, "-m", "dataflows", "replay", "votes", "--yes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replayed votes" in result.stdout
    assert stored_tallies(client, posts) == expected

    # the live run continues from where the replay ended
    platform.restart_flow("votes")
    vote_stream(client, posts, voters, 100, seed=3)
    expected = recompute(settings.kafka_bootstrap, set(posts))
    wait_for(
        lambda: stored_tallies(client, posts) == expected,
        timeout=30,
        what="tallies after resuming from the replay",
    )
