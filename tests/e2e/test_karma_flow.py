"""Karma through the API: self-votes earn nothing; karma equals a recomputation from
the vote log, live and after `python -m dataflows replay karma`."""

from __future__ import annotations

import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.log_karma import recompute_karma
from tests.e2e.social import comment, wait_comments
from tests.processes import ROOT, wait_for


def karma_of(client, user) -> tuple[int, int]:
    r = client.http.get(f"/users/{user.username}")
    assert r.status_code == 200, r.text
    k = r.json()["karma"]
    assert k["total"] == k["post"] + k["comment"]
    return k["post"], k["comment"]


@pytest.fixture(scope="module")
def karma_world(client):
    alice, bob, carol, dave = (client.register(n) for n in ("alice", "bob", "carol", "dave"))
    community = client.community(alice)
    post_a = client.post(alice, community, "alice's post")
    post_b = client.post(bob, community, "bob's post")
    comment_a = comment(client, alice, post_b, "alice's comment")["comment_id"]
    comment_b = comment(client, bob, post_a, "bob's comment")["comment_id"]
    wait_comments(client, post_a, 1)
    wait_comments(client, post_b, 1)
    users = [alice, bob, carol, dave]
    targets = [(post_a, "post"), (post_b, "post"), (comment_a, "comment"), (comment_b, "comment")]
    return users, targets


def test_profile_shows_karma_without_self_votes(client, karma_world):
    (alice, bob, carol, dave), targets = karma_world
    post_a, comment_a = targets[0][0], targets[2][0]
    plan = [
        (alice, post_a, "post", 1),  # self-vote
        (bob, post_a, "post", 1),
        (carol, post_a, "post", -1),
        (dave, post_a, "post", 1),
        (alice, comment_a, "comment", 1),  # self-vote
        (bob, comment_a, "comment", 1),
        (carol, comment_a, "comment", 1),
    ]
    for user, target, kind, direction in plan:
        assert client.vote(user, target, direction, kind).status_code == 200
    # post score 2 minus alice's own +1; comment score 3 minus her own +1
    wait_for(lambda: karma_of(client, alice) == (1, 2), timeout=30, what="alice's karma")
    profile = client.http.get(f"/users/{alice.username}").json()
    assert set(profile) == {"username", "karma", "created_at"}
    assert profile["karma"] == {"post": 1, "comment": 2, "total": 3}
    assert client.http.get("/users/nobody_here").status_code == 404


def vote_storm(client, users, targets, count: int, seed: int) -> None:
    rng = random.Random(seed)
    plan = [(rng.choice(users), *rng.choice(targets), rng.choice((1, 0, -1))) for _ in range(count)]

    def cast(item):
        user, target, kind, direction = item
        return client.vote(user, target, direction, kind).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(cast, plan)) == {200}


@pytest.mark.slow
def test_karma_equals_the_vote_log_live_and_after_replay(client, platform, settings, karma_world):
    users, targets = karma_world
    vote_storm(client, users, targets, 300, seed=7)
    authors = {u.user_id for u in users}

    def observed():
        return {u.user_id: karma_of(client, u) for u in users}

    expected = recompute_karma(settings.kafka_bootstrap, authors)
    wait_for(lambda: observed() == expected, timeout=60, what=f"karma {expected}")

    platform.flows["karma"].stop()
    result = subprocess.run(
        [sys.executable, "-m", "dataflows", "replay", "karma", "--yes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    platform.restart_flow("karma")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replayed karma" in result.stdout
    assert observed() == expected

    # the live run continues from where the replay ended
    vote_storm(client, users, targets, 100, seed=8)
    expected = recompute_karma(settings.kafka_bootstrap, authors)
    wait_for(lambda: observed() == expected, timeout=60, what=f"karma after the replay {expected}")
