"""Replay equivalence after moderation: a sequence of edits, deletes, removals,
approvals, locks, flairs and a shadow-ban, then a replay of every dataflow that reads
the moderation topic (content, ranking, mentions) from offset 0 into emptied stores:
every reader sees exactly what they saw before."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.e2e.conftest import Client, User
from tests.e2e.governance import listed, make_community, mod, submit, tree_ids
from tests.e2e.social import comment
from tests.processes import ROOT, wait_for

pytestmark = pytest.mark.slow

REPLAYED = ("content", "ranking", "mentions")
PAGE_FIELDS = ("title", "body", "author", "removed", "deleted", "locked", "flair", "edited_at")


def visible_state(
    client: Client, community: str, posts: list[str], viewers: list[User | None]
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for viewer in viewers:
        who = viewer.username if viewer else "anonymous"
        headers = viewer.headers if viewer else None
        for sort in ("hot", "new"):
            state[f"{who} {sort}"] = listed(client, community, viewer, sort)
        for post_id in posts:
            r = client.http.get(f"/posts/{post_id}", headers=headers)
            page = r.json()
            state[f"{who} {post_id}"] = (
                r.status_code,
                {k: page.get(k) for k in PAGE_FIELDS} if r.status_code == 200 else None,
                sorted(tree_ids(client, post_id, viewer)) if r.status_code == 200 else None,
            )
    return state


def replay(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dataflows", "replay", name, "--yes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"replayed {name}" in result.stdout


def test_replay_after_moderation_shows_the_same(client: Client, platform) -> None:
    owner, author, shadow, reader = (client.register(p) for p in ("own", "aut", "shd", "rdr"))
    name = make_community(client, owner, "public")
    kept, removed, deleted, edited, approved = (
        submit(client, author, name, t) for t in ("kept", "removed", "deleted", "edited", "back")
    )
    shadowed = submit(client, shadow, name, "shadowed")
    rude = comment(client, reader, kept, "rude")
    fine = comment(client, reader, kept, "fine")
    hidden = comment(client, shadow, kept, "hidden")
    wait_for(lambda: len(tree_ids(client, kept, owner)) == 3, what="comments")
    assert (
        client.http.patch(
            f"/posts/{edited}", json={"title": "edited!", "body": "new"}, headers=author.headers
        ).status_code
        == 202
    )
    assert client.http.delete(f"/posts/{deleted}", headers=author.headers).status_code == 202
    for target in (removed, approved, rude["comment_id"]):
        assert mod(client, owner, name, "remove", target_id=target, reason="r").status_code == 200
    assert mod(client, owner, name, "approve", target_id=approved).status_code == 200
    assert mod(client, owner, name, "lock", post_id=edited, locked=True).status_code == 200
    assert mod(client, owner, name, "flair", post_id=edited, flair="news").status_code == 200
    assert mod(client, owner, name, "shadow-ban", username=shadow.username).status_code == 200
    posts = [kept, removed, deleted, edited, approved, shadowed]
    viewers: list[User | None] = [None, reader, shadow, owner]

    def settled() -> dict[str, Any] | None:
        state = visible_state(client, name, posts, viewers)
        anonymous = state["anonymous new"]
        # Every action's effect, not only the last ones': the edit (posts topic) and the
        # moderation (moderation topic) reach the flows on partitions of their own, in
        # no fixed order between them.
        page = state[f"anonymous {edited}"][1]
        thread = state[f"anonymous {kept}"][2]
        done = (
            set(anonymous) == {kept, edited, approved}
            and set(state["anonymous hot"]) == {kept, edited, approved}
            and page["flair"] == "news"
            and page["title"] == "edited!"
            and page["locked"]
            and state[f"anonymous {deleted}"][1]["deleted"]
            and hidden["comment_id"] not in thread
            and state[f"{shadow.username} new"] == [shadowed, approved, edited, kept]
        )
        return state if done else None

    before = wait_for(settled, timeout=60, what="every action applied")
    assert before[f"{shadow.username} new"] == [shadowed, approved, edited, kept]
    assert hidden["comment_id"] not in before[f"anonymous {kept}"][2]
    assert fine["comment_id"] in before[f"anonymous {kept}"][2]

    for flow in REPLAYED:
        platform.flows[flow].stop()
    try:
        for flow in REPLAYED:
            replay(flow)
        after: dict[str, Any] = {}

        def replayed_equal() -> bool:
            after.clear()
            after.update(visible_state(client, name, posts, viewers))
            return after == before

        try:  # the API's page and thread caches: a second at most
            wait_for(replayed_equal, timeout=10, what="the replayed state")
        except AssertionError:
            differing = {
                k: (before.get(k), after.get(k))
                for k in before.keys() | after.keys()
                if before.get(k) != after.get(k)
            }
            raise AssertionError(f"replayed state differs (live, replayed): {differing}") from None
    finally:
        for flow in REPLAYED:
            platform.restart_flow(flow)
