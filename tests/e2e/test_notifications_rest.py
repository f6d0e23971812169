"""Reply and mention notifications through the REST API: who gets what, once; the inbox,
the unread filter and count, marking read."""

from __future__ import annotations

import pytest

from tests.e2e.social import comment, wait_comments
from tests.processes import wait_for


def inbox(client, user, **params) -> list[dict]:
    r = client.http.get("/notifications", params=params, headers=user.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def unread(client, user) -> int:
    r = client.http.get("/notifications/unread-count", headers=user.headers)
    assert r.status_code == 200, r.text
    return r.json()["unread_count"]


@pytest.fixture(scope="module")
def people(client):
    a, b, c = client.register("na"), client.register("nb"), client.register("nc")
    community = client.community(a)
    return a, b, c, community


def test_mentions_and_replies_notify_once_each(client, people):
    a, b, c, community = people
    post_id = client.post(b, community, f"hello u/{a.username}")  # b mentions a in a post
    wait_for(lambda: len(inbox(client, a)) == 1, timeout=20, what="a's post mention")
    note = inbox(client, a)[0]
    assert (note["kind"], note["actor"], note["target_id"], note["read"]) == (
        "mention",
        b.username,
        post_id,
        False,
    )
    # a comments on b's post (a reply to b), mentions b twice, c once, itself and a stranger
    text = f"u/{b.username} u/{b.username.upper()} u/{c.username} u/{a.username} u/ghost_user_x"
    made = comment(client, a, post_id, text)
    wait_comments(client, post_id, 1)
    wait_for(lambda: inbox(client, b) and inbox(client, c), timeout=20, what="b and c notified")
    assert [(n["kind"], n["target_id"]) for n in inbox(client, b)] == [
        ("reply", made["comment_id"])
    ]
    assert [(n["kind"], n["actor"]) for n in inbox(client, c)] == [("mention", a.username)]
    assert len(inbox(client, a)) == 1  # nothing for mentioning oneself

    # an edit that mentions c again adds nothing; one naming a newcomer notifies them
    d = client.register("nd")
    r = client.http.patch(
        f"/comments/{made['comment_id']}",
        json={"body": f"u/{c.username} and u/{d.username}"},
        headers=a.headers,
    )
    assert r.status_code == 202
    wait_for(lambda: inbox(client, d), timeout=20, what="d's mention from an edit")
    assert len(inbox(client, c)) == 1 and len(inbox(client, b)) == 1


def test_unread_filter_count_and_marking_read(client, people):
    a, b, _c, community = people
    reader = client.register("ne")
    post_id = client.post(a, community, "three mentions")
    for i in range(3):
        comment(client, b, post_id, f"{i}: u/{reader.username}")
    wait_for(lambda: unread(client, reader) == 3, timeout=20, what="three unread")
    items = inbox(client, reader)
    assert len(items) == 3 and items[0]["created_at"] >= items[-1]["created_at"]

    r = client.http.post(
        "/notifications/read", json={"ids": [items[0]["notification_id"]]}, headers=reader.headers
    )
    assert r.status_code == 200 and r.json() == {"unread_count": 2}
    assert unread(client, reader) == 2
    assert len(inbox(client, reader, unread="true")) == 2
    # paging
    first = client.http.get("/notifications", params={"limit": 2}, headers=reader.headers).json()
    second = client.http.get(
        "/notifications",
        params={"limit": 2, "cursor": first["next_cursor"]},
        headers=reader.headers,
    ).json()
    assert [n["notification_id"] for n in first["items"] + second["items"]] == [
        n["notification_id"] for n in items
    ]
    assert second["next_cursor"] is None
    # someone else's ids change nothing
    other = client.http.post(
        "/notifications/read", json={"ids": [items[1]["notification_id"]]}, headers=a.headers
    )
    assert other.status_code == 200 and unread(client, reader) == 2

    r = client.http.post("/notifications/read", json={"all": True}, headers=reader.headers)
    assert r.json() == {"unread_count": 0}
    assert inbox(client, reader, unread="true") == []
    assert all(n["read"] for n in inbox(client, reader))


def test_bad_notification_requests(client, people):
    a = people[0]
    h = a.headers
    assert client.http.get("/notifications").status_code == 401
    assert client.http.get("/notifications/unread-count").status_code == 401
    bad = [
        client.http.post("/notifications/read", json={}, headers=h),
        client.http.post("/notifications/read", json={"ids": []}, headers=h),
        client.http.post("/notifications/read", json={"ids": ["x"], "all": True}, headers=h),
        client.http.post("/notifications/read", json={"all": False}, headers=h),
        client.http.post("/notifications/read", json={"ids": ["x" * 65]}, headers=h),
        client.http.get("/notifications", params={"unread": "maybe"}, headers=h),
        client.http.get("/notifications", params={"cursor": "!!"}, headers=h),
    ]
    assert [r.status_code for r in bad] == [400] * len(bad)
