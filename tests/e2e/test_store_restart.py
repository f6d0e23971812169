"""A store that restarts is not poison: Postgres goes away during a stream of votes;
the votes dataflow waits for it (no process exits, no dead letter) and, once it is
back, the tallies equal a recomputation from the votes topic, and the ranking flow
(which routes by the shard placement it must confirm again) lists a new post.

This stops the stack's Postgres (`deploy/stack.sh stop postgres`) and always starts it
again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.votes import Tally
from tests.e2e.log_tallies import votes_in_log
from tests.e2e.stack_control import dead_letters_of, stack_service, start_service, stop_service
from tests.processes import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def stack_postgres(stack) -> Iterator[None]:
    with stack_service("postgres"):
        yield


def test_postgres_restart_during_votes_is_waited_out(
    client, platform, settings, stack_postgres
) -> None:
    owner = client.register("sr")
    voters = [client.register("sv") for _ in range(8)]
    name = client.community(owner)
    posts = [client.post(owner, name, f"restart {i}") for i in range(3)]
    letters_before = {flow: dead_letters_of(flow) for flow in ("votes", "ranking")}

    def vote_round(direction_of: int) -> None:
        for i, voter in enumerate(voters):
            for j, post in enumerate(posts):
                direction = (1, -1, 0)[(i + j + direction_of) % 3]
                assert client.vote(voter, post, direction).status_code == 200

    vote_round(0)
    stop_service("postgres")
    try:
        for k in range(1, 4):  # votes need only Redis and Kafka: they keep being accepted
            vote_round(k)
    finally:
        start_service("postgres")
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
    # Every flow that writes the shards came back too: a post made now is ranked.
    fresh = client.post(owner, name, "after the restart")
    wait_for(
        lambda: (
            fresh
            in {
                i["post_id"] for i in client.listing(f"/communities/{name}/posts?sort=new")["items"]
            }
        ),
        timeout=60,
        interval=0.5,
        what="a post made after the restart in its community's listing",
    )
    for flow, letters in letters_before.items():  # waiting, never dead-lettering
        assert dead_letters_of(flow) == letters, flow
    log = platform.flows["votes"].log_path.read_text(errors="replace")
    assert "store unavailable" in log  # it did meet the outage, and waited
