"""Comments through the API: concurrent replies, deletes that keep the tree's shape,
sorts against hand-computed Wilson values, depth limits, subtrees, comment votes and
the post's comment count."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.social import comment, tree, wait_comments, walk
from tests.processes import ROOT, wait_for


@pytest.fixture(scope="module")
def thread_world(client):
    author = client.register("op")
    community = client.community(author)
    return author, community


def test_concurrent_replies_to_one_parent_never_collide(client, thread_world):
    author, community = thread_world
    post_id = client.post(author, community, "a busy thread")
    parent = comment(client, author, post_id, "parent")
    wait_comments(client, post_id, 1)
    repliers = [client.register("r") for _ in range(6)]
    plan = [repliers[i % len(repliers)] for i in range(36)]

    def reply(i_user):
        i, user = i_user
        return comment(client, user, post_id, f"reply {i}", parent["comment_id"])

    with ThreadPoolExecutor(12) as pool:
        accepted = list(pool.map(reply, enumerate(plan)))
    paths = [c["path"] for c in accepted]
    assert len(set(paths)) == len(paths) == 36
    assert all(p.startswith(parent["path"] + ".") for p in paths)
    assert all(c["depth"] == 1 for c in accepted)

    wait_comments(client, post_id, 37)
    items = tree(client, post_id, sort="new", limit=100)["items"]
    children = items[0]["children"]
    assert len(children) == 36
    assert {c["path"] for c in children} == set(paths)
    assert {c["comment_id"] for c in children} == {c["comment_id"] for c in accepted}
    assert client.get_post(post_id)["comment_count"] == 37


def test_deleted_comments_keep_their_children(client, thread_world):
    author, community = thread_world
    other = client.register("o")
    post_id = client.post(author, community, "deletions")
    top = comment(client, other, post_id, "will be deleted")
    wait_comments(client, post_id, 1)
    child = comment(client, author, post_id, "child", top["comment_id"])
    wait_comments(client, post_id, 2)
    grandchild = comment(client, other, post_id, "grandchild", child["comment_id"])
    wait_comments(client, post_id, 3)

    assert (
        client.http.delete(f"/comments/{top['comment_id']}", headers=author.headers).status_code
        == 403
    )
    r = client.http.delete(f"/comments/{top['comment_id']}", headers=other.headers)
    assert r.status_code == 202, r.text

    def deleted_view():
        items = tree(client, post_id)["items"]
        return items if items and items[0]["deleted"] else None

    items = wait_for(deleted_view, timeout=20, what="the delete to be materialised")
    top_view = items[0]
    assert (top_view["author"], top_view["body"], top_view["path"]) == (
        "[deleted]",
        "[deleted]",
        top["path"],
    )
    assert [c["comment_id"] for c in top_view["children"]] == [child["comment_id"]]
    assert top_view["children"][0]["children"][0]["comment_id"] == grandchild["comment_id"]
    assert top_view["children"][0]["body"] == "child"

    # a deleted comment stays deleted: no edit, no second delete, still a parent
    edit = client.http.patch(
        f"/comments/{top['comment_id']}", json={"body": "back"}, headers=other.headers
    )
    assert edit.status_code == 404
    comment(client, author, post_id, "reply to a deleted comment", top["comment_id"])
    wait_comments(client, post_id, 4)
    assert client.get_post(post_id)["comment_count"] == 4


def test_edit_is_author_only_and_shows(client, thread_world):
    author, community = thread_world
    other = client.register("e")
    post_id = client.post(author, community, "edits")
    c = comment(client, other, post_id, "first version")
    wait_comments(client, post_id, 1)
    url = f"/comments/{c['comment_id']}"
    assert client.http.patch(url, json={"body": "mine"}, headers=author.headers).status_code == 403
    assert client.http.patch(url, json={"body": "  "}, headers=other.headers).status_code == 400
    r = client.http.patch(url, json={"body": "second version"}, headers=other.headers)
    assert r.status_code == 202, r.text
    wait_for(
        lambda: tree(client, post_id)["items"][0]["body"] == "second version",
        timeout=20,
        what="the edit",
    )
    assert tree(client, post_id)["items"][0]["edited_at"] is not None


# Tallies chosen so that every sort orders the five siblings differently; the Wilson
# lower bounds (z = 1.2816) are computed by hand in tests/unit/test_comments_domain.py:
# 2/0 -> 0.5491, 4/1 -> 0.5135, 1/0 -> 0.3784, 1/1 -> 0.1643, 0/0 -> 0.
TALLIES = [(2, 0), (4, 1), (1, 0), (1, 1), (0, 0)]
EXPECTED = {
    "best": [0, 1, 2, 3, 4],
    "top": [1, 0, 2, 3, 4],
    "new": [4, 3, 2, 1, 0],
    "controversial": [3, 1, 0, 2, 4],  # 1/1 -> 2.0, 4/1 -> 5**0.25, the rest 0 (by age)
}


def test_sorts_follow_scores_at_every_level(client, thread_world):
    author, community = thread_world
    voters = [client.register("s") for _ in range(5)]
    post_id = client.post(author, community, "sorting")
    tops = []
    for i in range(5):
        tops.append(comment(client, author, post_id, f"top {i}")["comment_id"])
        wait_comments(client, post_id, i + 1)
    # replies under the first top-level comment: the second gets the votes
    replies = [
        comment(client, author, post_id, f"reply {i}", tops[0])["comment_id"] for i in range(2)
    ]
    wait_comments(client, post_id, 7)

    casts = []
    for target, (ups, downs) in zip(tops, TALLIES, strict=True):
        casts += [(voters[i], target, 1) for i in range(ups)]
        casts += [(voters[ups + i], target, -1) for i in range(downs)]
    casts += [(voters[0], replies[1], 1)]
    for user, target, direction in casts:
        assert client.vote(user, target, direction, "comment").status_code == 200

    def scored():
        items = tree(client, post_id, sort="top")["items"]
        return {c["comment_id"]: (c["upvotes"], c["downvotes"]) for c in walk(items)}

    expected_tallies = dict(zip(tops, TALLIES, strict=True)) | {
        replies[1]: (1, 0),
        replies[0]: (0, 0),
    }
    wait_for(lambda: scored() == expected_tallies, timeout=30, what="comment tallies in CQL")

    for sort, order in EXPECTED.items():
        items = tree(client, post_id, sort=sort)["items"]
        assert [c["comment_id"] for c in items] == [tops[i] for i in order], sort
        under_first = next(c for c in items if c["comment_id"] == tops[0])["children"]
        if sort in ("best", "top", "new"):
            assert [c["comment_id"] for c in under_first] == [replies[1], replies[0]], sort

    # my_vote rides along for a signed-in reader
    mine = {c["comment_id"]: c["my_vote"] for c in walk(tree(client, post_id, voters[0])["items"])}
    assert mine[tops[0]] == 1 and mine[replies[1]] == 1 and mine[tops[4]] == 0


def test_depth_limit_more_children_and_subtree_on_demand(client, thread_world):
    author, community = thread_world
    post_id = client.post(author, community, "deep")
    parent = None
    chain = []
    for level in range(5):
        made = comment(client, author, post_id, f"level {level}", parent)
        assert made["depth"] == level
        chain.append(made)
        parent = made["comment_id"]
        wait_comments(client, post_id, level + 1)
    sibling = comment(client, author, post_id, "second reply at level 1", chain[0]["comment_id"])
    wait_comments(client, post_id, 6)

    items = tree(client, post_id, depth=2)["items"]
    level1 = items[0]["children"]
    assert {c["comment_id"] for c in level1} == {chain[1]["comment_id"], sibling["comment_id"]}
    deep = next(c for c in level1 if c["comment_id"] == chain[1]["comment_id"])
    assert deep["children"] == [] and deep["more_children"] == 1

    # limit 1 among siblings: the other one is counted
    limited = tree(client, post_id, depth=3, limit=1)["items"][0]
    assert len(limited["children"]) == 1 and limited["more_children"] == 1

    # load what was cut off: the replies below chain[1], two levels deep
    sub = tree(client, post_id, depth=2, parent_id=chain[1]["comment_id"])["items"]
    assert [c["comment_id"] for c in sub] == [chain[2]["comment_id"]]
    assert sub[0]["children"][0]["comment_id"] == chain[3]["comment_id"]
    assert sub[0]["children"][0]["more_children"] == 1

    # paging the top level
    second = comment(client, author, post_id, "another top-level comment")
    wait_comments(client, post_id, 7)
    page = tree(client, post_id, sort="new", limit=1, depth=1)
    assert [c["comment_id"] for c in page["items"]] == [second["comment_id"]]
    assert page["more_children"] == 1 and page["next_cursor"]
    rest = tree(client, post_id, sort="new", limit=1, depth=1, cursor=page["next_cursor"])
    assert [c["comment_id"] for c in rest["items"]] == [chain[0]["comment_id"]]
    assert rest["next_cursor"] is None


def test_bad_comment_requests_are_refused(client, thread_world):
    author, community = thread_world
    post_id = client.post(author, community, "bad input")
    other_post = client.post(author, community, "other")
    elsewhere = comment(client, author, other_post, "elsewhere")
    wait_comments(client, other_post, 1)
    h = author.headers
    cases = [
        client.http.post(f"/posts/{post_id}/comments", json={"body": ""}, headers=h),
        client.http.post(f"/posts/{post_id}/comments", json={"body": "x" * 10001}, headers=h),
        client.http.post(f"/posts/{post_id}/comments", json={"body": "x", "extra": 1}, headers=h),
        client.http.post(
            f"/posts/{post_id}/comments",
            json={"body": "x", "parent_id": elsewhere["comment_id"]},
            headers=h,
        ),
        client.http.get(f"/posts/{post_id}/comments", params={"sort": "hot"}),
        client.http.get(f"/posts/{post_id}/comments", params={"depth": "zero"}),
        client.http.get(f"/posts/{post_id}/comments", params={"depth": 11}),
    ]
    assert [r.status_code for r in cases] == [400] * len(cases)
    assert client.http.post(f"/posts/{post_id}/comments", json={"body": "x"}).status_code == 401
    missing = [
        client.http.post("/posts/nope/comments", json={"body": "x"}, headers=h),
        client.http.post(
            f"/posts/{post_id}/comments", json={"body": "x", "parent_id": "nope"}, headers=h
        ),
        client.http.get("/posts/nope/comments"),
        client.http.patch("/comments/nope", json={"body": "x"}, headers=h),
        client.http.delete("/comments/nope", headers=h),
        client.http.put(
            "/votes",
            json={"target_id": "nope", "target_type": "comment", "direction": 1},
            headers=h,
        ),
    ]
    assert [r.status_code for r in missing] == [404] * len(missing)
    for r in cases + missing:
        assert set(r.json()["error"]) == {"code", "message", "details"}
    assert tree(client, post_id)["items"] == []
    assert client.get_post(post_id)["comment_count"] == 0


@pytest.mark.slow
def test_replay_of_content_rebuilds_comments_and_counts(client, platform, thread_world):
    author, community = thread_world
    post_id = client.post(author, community, "replayed")
    top = comment(client, author, post_id, "top")
    wait_comments(client, post_id, 1)
    comment(client, author, post_id, "reply", top["comment_id"])
    gone = comment(client, author, post_id, "deleted later")
    wait_comments(client, post_id, 3)
    assert (
        client.http.delete(f"/comments/{gone['comment_id']}", headers=author.headers).status_code
        == 202
    )
    wait_for(
        lambda: any(c["deleted"] for c in tree(client, post_id)["items"]),
        timeout=20,
        what="the delete",
    )
    before = tree(client, post_id, depth=10, limit=100)
    count = client.get_post(post_id)["comment_count"]

    platform.flows["content"].stop()
    result = subprocess.run(
        [sys.executable, "-m", "dataflows", "replay", "content", "--yes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    platform.restart_flow("content")
    assert result.returncode == 0, result.stderr[-3000:]
    assert tree(client, post_id, depth=10, limit=100) == before
    assert client.get_post(post_id)["comment_count"] == count == 3


def test_a_users_comments_newest_first_without_deleted_ones(client, thread_world):
    author, community = thread_world
    writer = client.register("h")
    posts = [client.post(author, community, f"history {i}") for i in range(2)]
    made = [comment(client, writer, posts[i % 2], f"history comment {i}") for i in range(3)]
    wait_comments(client, posts[0], 2)  # made[0] and made[2]
    wait_comments(client, posts[1], 1)
    assert (
        client.http.delete(f"/comments/{made[1]['comment_id']}", headers=writer.headers).status_code
        == 202
    )
    r = client.http.patch(
        f"/comments/{made[2]['comment_id']}", json={"body": "edited"}, headers=writer.headers
    )
    assert r.status_code == 202

    def history():
        return client.http.get(f"/users/{writer.username}/comments").json()["items"]

    wait_for(
        lambda: (
            [(c["comment_id"], c["body"]) for c in history()]
            == [(made[2]["comment_id"], "edited"), (made[0]["comment_id"], "history comment 0")]
        ),
        timeout=20,
        what="the user's comment list",
    )
    first = history()[0]
    assert (first["post_id"], first["author"], first["path"]) == (
        posts[0],
        writer.username,
        "000002",
    )
    page = client.http.get(f"/users/{writer.username}/comments", params={"limit": 1}).json()
    rest = client.http.get(
        f"/users/{writer.username}/comments", params={"limit": 1, "cursor": page["next_cursor"]}
    ).json()
    assert [c["comment_id"] for c in page["items"] + rest["items"]] == [
        made[2]["comment_id"],
        made[0]["comment_id"],
    ]
    assert rest["next_cursor"] is None
    assert client.http.get("/users/no_such_user_x/comments").status_code == 404
