"""A store that restarts is not poison: Postgres goes away during a stream of votes;
the votes dataflow waits for it (no process exits, no dead letter) and, once it is
back, the tallies equal a recomputation from the votes topic.

This stops the stack's Postgres (`deploy/stack.sh stop postgres`) and always starts it
again."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from domain.votes import Tally
from tests.e2e.log_tallies import votes_in_log
from tests.processes import ROOT, wait_for

pytestmark = pytest.mark.slow


def stack_sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "deploy" / "stack.sh"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def postgres_up() -> bool:
    return re.search(r"^postgres\s+up\s", stack_sh("status").stdout, re.MULTILINE) is not None


def dead_letters_of(dataflow: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "dataflows", "dead-letters", "--dataflow", dataflow],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(out.stdout.splitlines())


@pytest.fixture
def stack_postgres(stack) -> Iterator[None]:
    if not postgres_up():
        pytest.skip("Postgres is not run by deploy/stack.sh from this state folder")
    yield
    if not postgres_up():
        started = stack_sh("start", "postgres")
        assert started.returncode == 0, started.stdout + started.stderr


def test_postgres_restart_during_votes_is_waited_out(
    client, platform, settings, stack_postgres
) -> None:
    owner = client.register("sr")
    voters = [client.register("sv") for _ in range(8)]
    name = client.community(owner)
    posts = [client.post(owner, name, f"restart {i}") for i in range(3)]
    letters_before = dead_letters_of("votes")

    def vote_round(direction_of: int) -> None:
        for i, voter in enumerate(voters):
            for j, post in enumerate(posts):
                direction = (1, -1, 0)[(i + j + direction_of) % 3]
                assert client.vote(voter, post, direction).status_code == 200

    vote_round(0)
    stopped = stack_sh("stop", "postgres")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    try:
        for k in range(1, 4):  # votes need only Redis and Kafka: they keep being accepted
            vote_round(k)
    finally:
        started = stack_sh("start", "postgres")
        assert started.returncode == 0, started.stdout + started.stderr
    vote_round(5)

    expected: dict[str, Tally] = {post: Tally() for post in posts}
    for vote in votes_in_log(settings.kafka_bootstrap):
        if vote.target_id in expected:
            expected[vote.target_id].apply(vote.user_id, vote.direction, vote.version)

    def converged() -> bool:
        for post, tally in expected.items():
            r = client.http.get(f"/posts/{post}")
            if r.status_code != 200:
                return False
            body = r.json()
            if (body["upvotes"], body["downvotes"]) != (tally.upvotes, tally.downvotes):
                return False
        return True

    wait_for(converged, timeout=60, interval=0.5, what="tallies after the restart")
    for flow, proc in platform.flows.items():
        assert proc.alive(), f"{flow} exited:\n{proc.log_tail()}"
    assert dead_letters_of("votes") == letters_before  # waiting, never dead-lettering
    log = platform.flows["votes"].log_path.read_text(errors="replace")
    assert "store unavailable" in log  # it did meet the outage, and waited
