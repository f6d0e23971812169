"""Cassandra restarts under a stream of comments: while it is down a comment answers 202
(its reply slot was already claimed) or 503 with Retry-After (a slot needs the CQL
store), never a 500; reads of posts keep working; no dataflow exits or dead-letters;
once Cassandra is back comment writes resume, and every accepted comment is in the tree,
exactly once, with the post's comment count to match.

This stops the stack's Cassandra (`deploy/stack.sh stop cassandra`) and always starts
it again."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.social import comment, tree, walk
from tests.e2e.stack_control import dead_letters_of, stack_service, start_service, stop_service
from tests.processes import wait_for

pytestmark = pytest.mark.slow

PER_ROUND = 6


@pytest.fixture
def stack_cassandra(stack) -> Iterator[None]:
    with stack_service("cassandra"):
        yield


def readyz(base: str) -> httpx.Response | None:
    try:
        return httpx.get(f"{base}/readyz", timeout=5)
    except httpx.HTTPError:
        return None


def test_cassandra_restart_comment_writes_resume_nothing_lost(
    client, platform, stack_cassandra
) -> None:
    author = client.register("cr")
    others = [client.register("cc") for _ in range(3)]
    community = client.community(author)
    post_id = client.post(author, community, "a thread across a CQL restart")
    letters_before = dead_letters_of("content")
    accepted: list[str] = []

    def comment_round(label: str) -> None:
        for i in range(PER_ROUND):
            user = others[i % len(others)]
            accepted.append(comment(client, user, post_id, f"{label} {i}")["comment_id"])

    def comment_while_down(label: str) -> list[int]:
        statuses = []
        for i in range(PER_ROUND):
            r = client.http.post(
                f"/posts/{post_id}/comments",
                json={"body": f"{label} {i}"},
                headers=others[i % len(others)].headers,
            )
            assert r.status_code in (202, 503), r.text
            if r.status_code == 202:
                accepted.append(r.json()["comment_id"])
            else:
                assert r.headers.get("retry-after"), r.headers
                assert r.json()["error"]["code"] == "unavailable"
            statuses.append(r.status_code)
        return statuses

    comment_round("before")
    stop_service("cassandra")
    try:

        def cql_not_ready() -> bool:
            r = readyz(platform.base)
            return r is not None and r.status_code == 503 and "cql" in r.json()["error"]["details"]

        wait_for(cql_not_ready, timeout=30, what="/readyz to name the CQL store")
        assert 503 in comment_while_down("during")
        assert client.http.get(f"/posts/{post_id}").status_code == 200  # posts need no CQL
    finally:
        start_service("cassandra")
    wait_for(
        lambda: (r := readyz(platform.base)) is not None and r.status_code == 200,
        timeout=60,
        what="/readyz after the restart",
    )
    comment_round("after")  # writes resume at once

    def all_there() -> bool:
        r = client.http.get(f"/posts/{post_id}/comments", params={"limit": 100})
        if r.status_code != 200:
            return False
        return len(list(walk(r.json()["items"]))) >= len(accepted)

    wait_for(all_there, timeout=120, interval=0.5, what="every accepted comment in the tree")
    shown = [c["comment_id"] for c in walk(tree(client, post_id, limit=100)["items"])]
    assert sorted(shown) == sorted(accepted)  # all of them, none twice
    wait_for(
        lambda: client.get_post(post_id)["comment_count"] == len(accepted),
        timeout=60,
        what="the post's comment count",
    )
    for flow, proc in platform.flows.items():
        assert proc.alive(), f"{flow} exited:\n{proc.log_tail()}"
    assert dead_letters_of("content") == letters_before  # nothing dead-lettered
