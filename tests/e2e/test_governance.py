"""Communities that can be governed, end to end: the private-content leaks closed,
join requests, roles, PATCH, the home-feed cursor bound to its reader, the post
lifecycle (edit, delete, save, a user's posts) and moderation (remove, approve, ban
with expiry, mute, lock, flair, reports, the queue, the mod log, shadow-bans)."""

from __future__ import annotations

import time

from tests.e2e.conftest import Client
from tests.e2e.governance import join, listed, make_community, mod, submit, tree_ids
from tests.e2e.social import comment
from tests.processes import wait_for


def notifications(client: Client, user) -> list[dict]:
    r = client.http.get("/notifications", params={"limit": 100}, headers=user.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_private_community_content_is_404_to_non_members_everywhere(client: Client):
    owner, member, stranger = (client.register(p) for p in ("own", "mem", "str"))
    name = make_community(client, owner, "private")
    # joining is a request until a moderator approves it
    r = client.http.post(f"/communities/{name}/join", headers=member.headers)
    assert r.status_code == 202 and r.json() == {"status": "pending"}
    assert client.http.get(f"/communities/{name}/posts", headers=member.headers).status_code == 404
    r = client.http.get(f"/communities/{name}/join-requests", headers=owner.headers)
    assert [i["username"] for i in r.json()["items"]] == [member.username]
    assert (
        client.http.get(f"/communities/{name}/join-requests", headers=stranger.headers).status_code
        == 404
    )
    join(client, member, name, owner)
    post_id = submit(client, member, name, "secret")
    c = comment(client, member, post_id, f"a secret for u/{stranger.username}")
    wait_for(lambda: tree_ids(client, post_id, member) == [c["comment_id"]], what="comment")

    # the leaks of the issue, each closed
    for headers in (None, stranger.headers):
        assert client.http.get(f"/posts/{post_id}", headers=headers).status_code == 404
        assert client.http.get(f"/posts/{post_id}/comments", headers=headers).status_code == 404
        r = client.http.get(f"/communities/{name}/posts", headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = client.http.get(f"/users/{member.username}/comments", headers=headers)
        assert r.status_code == 200 and r.json()["items"] == []
        r = client.http.get(f"/users/{member.username}/posts", headers=headers)
        assert r.status_code == 200 and r.json()["items"] == []
    assert client.vote(stranger, post_id, 1).status_code == 404
    r = client.http.post(
        f"/posts/{post_id}/comments", json={"body": "let me in"}, headers=stranger.headers
    )
    assert r.status_code == 404
    r = client.http.post(
        "/reports", json={"target_id": post_id, "reason": "x"}, headers=stranger.headers
    )
    assert r.status_code == 404
    r = client.http.get("/communities", params={"prefix": name}, headers=stranger.headers)
    assert r.json()["items"] == []
    # members see it all
    assert client.http.get(f"/posts/{post_id}", headers=member.headers).json()["title"] == "secret"
    assert client.vote(member, post_id, 1).status_code == 200
    history = client.http.get(f"/users/{member.username}/comments", headers=owner.headers).json()
    assert [i["comment_id"] for i in history["items"]] == [c["comment_id"]]
    posts = client.http.get(f"/users/{member.username}/posts", headers=owner.headers).json()
    assert [i["post_id"] for i in posts["items"]] == [post_id]
    # a mention in a private thread does not send its snippet to a non-member: a later
    # public mention proves the stranger's inbox is live
    public = make_community(client, owner, "public")
    other = submit(client, owner, public, "public")
    comment(client, owner, other, f"hello u/{stranger.username}")
    wait_for(lambda: notifications(client, stranger), what="the public mention")
    assert [n["target_id"] for n in notifications(client, stranger)] != [c["comment_id"]]
    assert all(n["post_id"] != post_id for n in notifications(client, stranger) if "post_id" in n)
    assert all(n["target_id"] != c["comment_id"] for n in notifications(client, stranger))


def test_roles_leaving_and_settings(client: Client):
    owner, helper, reader = (client.register(p) for p in ("own", "hlp", "rdr"))
    name = make_community(client, owner, "public")
    r = client.http.post(f"/communities/{name}/leave", headers=owner.headers)
    assert r.status_code == 409  # the last owner cannot leave
    r = client.http.post(
        f"/communities/{name}/moderators", json={"username": helper.username}, headers=owner.headers
    )
    assert r.status_code == 200
    r = client.http.post(
        f"/communities/{name}/moderators",
        json={"username": reader.username},
        headers=helper.headers,
    )
    assert r.status_code == 403  # owners only
    mods = client.http.get(f"/communities/{name}/moderators").json()["items"]
    assert {(m["username"], m["role"]) for m in mods} == {
        (owner.username, "owner"),
        (helper.username, "moderator"),
    }
    r = client.http.patch(f"/communities/{name}", json={"rules": "be kind"}, headers=reader.headers)
    assert r.status_code == 403
    r = client.http.patch(
        f"/communities/{name}",
        json={"description": "new", "rules": "be kind", "visibility": "private"},
        headers=helper.headers,
    )
    assert r.status_code == 200 and r.json()["visibility"] == "private"
    assert r.json()["rules"] == "be kind"
    # the change reaches every read path at once (within the half-second cache)
    wait_for(
        lambda: client.http.get(f"/communities/{name}/posts").status_code == 404,
        timeout=2,
        what="the community to turn private",
    )
    assert client.http.get(f"/communities/{name}/posts", headers=helper.headers).status_code == 200
    # a moderator leaving keeps the owner; the owner still cannot leave
    assert client.http.post(f"/communities/{name}/leave", headers=helper.headers).status_code == 200
    assert client.http.post(f"/communities/{name}/leave", headers=owner.headers).status_code == 409
    r = client.http.delete(
        f"/communities/{name}/moderators/{owner.username}", headers=owner.headers
    )
    assert r.status_code == 409
    r = client.http.patch(f"/communities/{name}", json={}, headers=owner.headers)
    assert r.status_code == 400


def test_restricted_community_posting_needs_approval(client: Client):
    owner, member, approved = (client.register(p) for p in ("own", "mem", "apr"))
    name = make_community(client, owner, "restricted")
    join(client, member, name, owner)
    r = client.http.post(f"/communities/{name}/posts", json={"title": "hi"}, headers=member.headers)
    assert r.status_code == 403
    client.http.post(
        f"/communities/{name}/approved-users",
        json={"username": approved.username},
        headers=owner.headers,
    )
    post_id = submit(client, approved, name)
    assert client.http.get(f"/posts/{post_id}").status_code == 200  # anyone reads
    assert client.vote(member, post_id, 1).status_code == 200  # anyone votes


def test_the_home_feed_cursor_belongs_to_its_reader(client: Client):
    owner, other = client.register("own"), client.register("oth")
    name = make_community(client, owner, "public")
    for i in range(3):
        submit(client, owner, name, f"p{i}")
    wait_for(lambda: len(listed(client, name, owner, "hot")) == 3, what="ranked posts")
    first = client.http.get("/feed", params={"limit": 1}, headers=owner.headers).json()
    cursor = first["next_cursor"]
    assert cursor
    mine = client.http.get("/feed", params={"limit": 1, "cursor": cursor}, headers=owner.headers)
    assert mine.status_code == 200 and mine.json()["items"]
    theirs = client.http.get("/feed", params={"limit": 1, "cursor": cursor}, headers=other.headers)
    assert theirs.status_code == 400


def test_post_lifecycle_edit_delete_save(client: Client):
    author, reader = client.register("aut"), client.register("rdr")
    name = make_community(client, author, "public")
    post_id = submit(client, author, name, "original")
    keep = submit(client, author, name, "kept")
    c = comment(client, reader, post_id, "a reply")
    r = client.http.patch(
        f"/posts/{post_id}", json={"title": "changed", "body": "new body"}, headers=author.headers
    )
    assert r.status_code == 202
    assert (
        client.http.patch(
            f"/posts/{post_id}", json={"body": "x"}, headers=reader.headers
        ).status_code
        == 403
    )
    page = wait_for(
        lambda: (p := client.get_post(post_id))["edited_at"] and p,
        what="the edit to show",
    )
    assert page["title"] == "changed" and page["body"] == "new body"
    wait_for(
        lambda: any(
            i["title"] == "changed"
            for i in client.listing(f"/communities/{name}/posts?sort=new")["items"]
        ),
        what="the listing to show the new title",
    )
    # saved posts
    assert client.http.put(f"/posts/{post_id}/save", headers=reader.headers).status_code == 204
    assert client.http.put(f"/posts/{keep}/save", headers=reader.headers).status_code == 204
    saved = client.http.get("/users/me/saved", headers=reader.headers).json()["items"]
    assert [i["post_id"] for i in saved] == [keep, post_id]
    assert client.http.delete(f"/posts/{keep}/save", headers=reader.headers).status_code == 204
    saved = client.http.get("/users/me/saved", headers=reader.headers).json()["items"]
    assert [i["post_id"] for i in saved] == [post_id]
    # delete: leaves every listing, keeps its comments, shows [deleted]
    assert client.http.delete(f"/posts/{post_id}", headers=reader.headers).status_code == 403
    assert client.http.delete(f"/posts/{post_id}", headers=author.headers).status_code == 202
    wait_for(
        lambda: all(post_id not in listed(client, name, None, s) for s in ("new", "hot", "top")),
        what="the deleted post to leave the listings",
    )
    page = client.get_post(post_id)
    assert page["deleted"] and page["title"] == "[deleted]" and page["author"] == "[deleted]"
    assert tree_ids(client, post_id, None) == [c["comment_id"]]
    posts = client.http.get(f"/users/{author.username}/posts").json()["items"]
    assert [i["post_id"] for i in posts] == [keep]
    assert client.http.delete(f"/posts/{post_id}", headers=author.headers).status_code == 404


def test_removal_ban_mute_lock_flair_reports_and_the_log(client: Client):
    owner, author, reader = (client.register(p) for p in ("own", "aut", "rdr"))
    name = make_community(client, owner, "public")
    post_id = submit(client, author, name, "offending")
    other = submit(client, author, name, "fine")
    c = comment(client, author, other, "a rude comment")
    wait_for(lambda: tree_ids(client, other, None) == [c["comment_id"]], what="comment")
    # reports, one per user per target, then the queue
    body = {"target_id": post_id, "reason": "spam"}
    assert client.http.post("/reports", json=body, headers=reader.headers).status_code == 201
    assert client.http.post("/reports", json=body, headers=reader.headers).status_code == 409
    body2 = {"target_id": c["comment_id"], "reason": "rude"}
    assert client.http.post("/reports", json=body2, headers=owner.headers).status_code == 201
    queue = client.http.get(f"/communities/{name}/moderation/queue", headers=owner.headers).json()
    assert [(i["target_id"], i["count"]) for i in queue["items"]] == [
        (post_id, 1),
        (c["comment_id"], 1),
    ]
    assert (
        client.http.get(f"/communities/{name}/moderation/queue", headers=reader.headers).status_code
        == 403
    )
    # remove: out of the listings, [removed] to others, as it was to its author
    assert mod(client, reader, name, "remove", target_id=post_id).status_code == 403
    r = mod(client, owner, name, "remove", target_id=post_id, reason="off topic")
    assert r.status_code == 200
    r = mod(client, owner, name, "remove", target_id=c["comment_id"], reason="rude")
    assert r.status_code == 200
    wait_for(lambda: post_id not in listed(client, name, None, "hot"), what="removal")
    # listings (ranking) and the post page (content) are two dataflows: each in its time
    wait_for(
        lambda: client.get_post(post_id, reader)["title"] == "[removed]",
        timeout=30,
        what="[removed] on the post page",
    )
    mine = client.get_post(post_id, author)
    assert mine["title"] == "offending" and mine["removed"]
    wait_for(
        lambda: (
            client.http.get(f"/posts/{other}/comments").json()["items"][0]["body"] == "[removed]"
        ),
        what="the comment removal",
    )
    shown = client.http.get(f"/posts/{other}/comments", headers=author.headers).json()["items"]
    assert shown[0]["body"] == "a rude comment" and shown[0]["removed"]
    queue = client.http.get(f"/communities/{name}/moderation/queue", headers=owner.headers).json()
    assert queue["items"] == []
    kinds = wait_for(
        lambda: [n for n in notifications(client, author) if n["kind"] == "mod_action"],
        what="mod_action notifications",
    )
    assert {n["target_id"] for n in kinds} <= {post_id, c["comment_id"]}
    # approve brings it back
    assert mod(client, owner, name, "approve", target_id=post_id).status_code == 200
    wait_for(lambda: post_id in listed(client, name, None, "hot"), what="approval")
    # lock and flair
    assert mod(client, owner, name, "lock", post_id=other, locked=True).status_code == 200
    r = client.http.post(f"/posts/{other}/comments", json={"body": "hi"}, headers=reader.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "locked"
    assert mod(client, owner, name, "flair", post_id=other, flair="news").status_code == 200
    page = wait_for(lambda: (p := client.get_post(other))["flair"] == "news" and p, what="flair")
    assert page["locked"]
    # a ban of a short duration ends on its own; a mute still lets one vote
    r = mod(client, owner, name, "ban", username=reader.username, duration_hours=2 / 3600)
    assert r.status_code == 200
    r = client.http.post(f"/communities/{name}/posts", json={"title": "x"}, headers=reader.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "banned"
    vote = client.vote(reader, post_id, 1)
    assert vote.status_code == 403 and vote.json()["error"]["code"] == "banned"
    time.sleep(2.5)  # the ban's own duration: nothing is sent to end it
    assert client.vote(reader, post_id, 1).status_code == 200
    assert mod(client, owner, name, "mute", username=reader.username).status_code == 200
    r = client.http.post(f"/communities/{name}/posts", json={"title": "x"}, headers=reader.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "muted"
    assert client.vote(reader, post_id, -1).status_code == 200
    # the mod log, public for a public community, newest first
    log = client.http.get(f"/communities/{name}/moderation/log").json()["items"]
    assert [e["action"] for e in log] == [
        "mute",
        "ban",
        "flair",
        "lock",
        "approve",
        "remove",
        "remove",
    ]
    assert log[-1]["actor"] == owner.username and log[-1]["reason"] == "off topic"


def test_a_ban_stops_the_very_next_vote_on_every_api_process(client: Client):
    """Voters' standings are kept in each API process's memory: the vote script's
    version check, not a notice that may come later, must make a ban apply at once."""
    owner, author, voter = (client.register(p) for p in ("vbo", "vba", "vbv"))
    name = make_community(client, owner, "public")
    post_id = submit(client, author, name, "vote on me")
    for direction in (1, -1, 1, -1, 1, -1):  # every worker holds the voter's standing
        assert client.vote(voter, post_id, direction).status_code == 200
    assert mod(client, owner, name, "ban", username=voter.username).status_code == 200
    for direction in (1, -1, 0, 1, -1, 0):
        vote = client.vote(voter, post_id, direction)
        assert vote.status_code == 403 and vote.json()["error"]["code"] == "banned", vote.text
    assert mod(client, owner, name, "unban", username=voter.username).status_code == 200
    for direction in (1, 0, -1, 0):
        assert client.vote(voter, post_id, direction).status_code == 200
    # made moderator: sees (and may vote on) a shadow-banned author's post at once
    assert mod(client, owner, name, "shadow-ban", username=author.username).status_code == 200
    wait_for(lambda: client.vote(voter, post_id, 1).status_code == 404, what="shadow-ban in Redis")
    r = client.http.post(
        f"/communities/{name}/moderators", json={"username": voter.username}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    for direction in (1, 0, 1, -1):
        assert client.vote(voter, post_id, direction).status_code == 200


def test_shadow_ban_end_to_end(client: Client):
    owner, a, b = (client.register(p) for p in ("own", "aaa", "bbb"))
    name = make_community(client, owner, "public")
    host = submit(client, owner, name, "host")
    old = submit(client, b, name, "before the ban")
    r = mod(client, owner, name, "shadow-ban", username=b.username, reason="spammer")
    assert r.status_code == 200
    new = submit(client, b, name, f"after the ban, hi u/{a.username}")
    c = comment(client, b, host, f"shadow reply u/{a.username}")
    wait_for(lambda: c["comment_id"] in tree_ids(client, host, b), what="B's comment")
    wait_for(lambda: {old, new} <= set(listed(client, name, b, "hot")), what="B's posts ranked")
    # A (and anyone signed out) sees none of it anywhere
    for viewer in (a, None):
        for sort in ("hot", "new"):
            assert not {old, new} & set(listed(client, name, viewer, sort))
        assert c["comment_id"] not in tree_ids(client, host, viewer)
        headers = viewer.headers if viewer else None
        assert client.http.get(f"/posts/{new}", headers=headers).status_code == 404
        assert client.http.get(f"/users/{b.username}/posts", headers=headers).json()["items"] == []
        history = client.http.get(f"/users/{b.username}/comments", headers=headers).json()
        assert history["items"] == []
    # counts: B's comment is left out of the count others see
    wait_for(lambda: client.get_post(host, b)["comment_count"] == 1, what="B's comment counted")
    assert client.get_post(host, a)["comment_count"] == 0
    assert client.get_post(host)["comment_count"] == 0

    def count_in_listing(viewer) -> int:
        items = client.listing(f"/communities/{name}/posts?sort=new&limit=100", viewer)["items"]
        return next(i["comment_count"] for i in items if i["post_id"] == host)

    assert count_in_listing(a) == 0 and count_in_listing(b) == 1
    # B sees all of it, unmarked
    assert {old, new} <= set(listed(client, name, b, "new"))
    assert "shadow_banned" not in client.get_post(new, b)
    assert c["comment_id"] in tree_ids(client, host, b)
    # a moderator sees it marked
    assert {old, new} <= set(listed(client, name, owner, "new"))
    assert client.get_post(new, owner)["shadow_banned"] is True
    # no one is notified by it: A's inbox gets the later mention from someone else only
    other = submit(client, owner, name, f"hello u/{a.username}")
    wait_for(lambda: notifications(client, a), what="the owner's mention")
    assert {n["target_id"] for n in notifications(client, a)} == {other}
    # lifting it shows everything again
    assert mod(client, owner, name, "shadow-ban", username=b.username, lift=True).status_code == 200
    wait_for(lambda: {old, new} <= set(listed(client, name, a, "new")), what="the lift")
