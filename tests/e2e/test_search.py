"""Search end to end: API -> Kafka -> search dataflow -> Meilisearch -> GET /search.

Edits, deletes, removals, shadow-bans and visibility changes are put on the log as
the events the platform declares for them (post.edited, post.deleted,
content.moderated, member.sanctioned, community.updated), which is what the
dataflow reads whoever produces them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from confluent_kafka import Producer

from domain.ids import new_id
from schemas.envelope import encode, new_event
from schemas.events import (
    CommunityUpdated,
    ContentModerated,
    MemberSanctioned,
    Payload,
    PostDeleted,
    PostEdited,
)
from schemas.topics import COMMUNITIES, MODERATION, POSTS
from stores import search as store
from tests.e2e.conftest import Client, User
from tests.processes import ROOT, wait_for

WAIT = 180.0  # the first test waits for the dataflow to read the whole log


class Log:
    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})

    def publish(self, topic: str, payload: Payload, key: str) -> None:
        self.producer.produce(topic, value=encode(new_event(payload, key=key)), key=key.encode())
        assert self.producer.flush(15) == 0


@pytest.fixture(scope="module")
def log(settings: Any) -> Log:
    return Log(settings.kafka_bootstrap)


def search(client: Client, user: User | None = None, **params: Any) -> httpx.Response:
    return client.http.get("/search", params=params, headers=user.headers if user else None)


def found(client: Client, user: User | None = None, **params: Any) -> list[dict[str, Any]]:
    r = search(client, user, **params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def wait_found(
    client: Client,
    check: Callable[[list[dict[str, Any]]], bool],
    user: User | None = None,
    what: str = "",
    **params: Any,
) -> list[dict[str, Any]]:
    def probe() -> tuple[list[dict[str, Any]]] | None:
        r = search(client, user, **params)
        if r.status_code == 503:  # a machine too busy to answer in time: ask again
            return None
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return (items,) if check(items) else None  # a tuple: an empty list is an answer

    return wait_for(probe, timeout=WAIT, interval=0.1, what=what)[0]


def one(items: list[dict[str, Any]]) -> bool:
    return len(items) == 1


def none(items: list[dict[str, Any]]) -> bool:
    return items == []


def titles(items: list[dict[str, Any]]) -> set[str]:
    return {i["title"] for i in items}


def create_post(client: Client, author: User, community: str, title: str, body: str) -> str:
    r = client.http.post(
        f"/communities/{community}/posts",
        json={"title": title, "kind": "text", "body": body},
        headers=author.headers,
    )
    assert r.status_code == 202, r.text
    post_id: str = r.json()["post_id"]
    return post_id


def all_pages(client: Client, **params: Any) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(20):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = search(client, **query)
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [i["post_id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("paging did not end")


def test_typos_filters_sorts_paging_and_escaped_highlights(client: Client) -> None:
    owner, other = client.register("so"), client.register("sx")
    name = client.community(owner)
    posts = [
        (owner, "Python packaging guide", "wheels and sdists"),
        (other, "Rust ownership explained", "borrowing rules"),
        (owner, "Python <script>alert(1)</script> async tips", "<b>bold</b> then await everything"),
        (other, "Gardening tomatoes", "sun and water"),
        (other, "Python type hints", "mypy strict"),
    ]
    ids = [create_post(client, a, name, t, b) for a, t, b in posts]
    wait_found(client, lambda items: len(items) == 5, what="5 posts indexed", community=name)

    # typo tolerance: "pythn" finds the three Python posts and nothing else
    hits = found(client, q="pythn", community=name)
    assert titles(hits) == {t for _, t, _ in posts if t.startswith("Python")}
    # highlights are escaped: the title's markup comes back as text, only <mark> is markup
    scripted = next(h for h in hits if "script" in h["title"])
    assert scripted["highlight"]["title"].startswith("<mark>Pytho</mark>n &lt;script&gt;")
    assert "<script>" not in scripted["highlight"]["title"]
    hinted = found(client, q="await", community=name)
    assert (
        hinted[0]["highlight"]["body"]
        == "&lt;b&gt;bold&lt;/b&gt; then <mark>await</mark> everything"
    )

    # filters
    theirs = found(client, community=name, author=other.username)
    assert titles(theirs) == {t for a, t, _ in posts if a is other}
    assert found(client, community=name, author="nobody" + new_id()[-6:].lower()) == []

    # sort=new: newest first
    newest = found(client, community=name, sort="new")
    assert [i["post_id"] for i in newest] == list(reversed(ids))

    # sort=top once votes are counted: Rust 2, Gardening 1, the rest 0
    for voter in (owner, other):
        assert client.vote(voter, ids[1], 1).status_code == 200
    assert client.vote(owner, ids[3], 1).status_code == 200
    top = wait_found(
        client,
        lambda items: [i["score"] for i in items[:2]] == [2, 1],
        what="scores in the index",
        community=name,
        sort="top",
    )
    assert [i["post_id"] for i in top[:2]] == [ids[1], ids[3]]

    # paging: every sort, two at a time, each post once
    for sort in ("relevance", "new", "top"):
        paged = all_pages(client, community=name, sort=sort, limit=2)
        assert sorted(paged) == sorted(ids), sort

    # bad input is a 400 with a JSON error
    for params in ({"sort": "hot"}, {"cursor": "!!"}, {"q": "x" * 300}, {"limit": 0}):
        r = search(client, **params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["error"]["code"] == "validation_failed"


def test_edit_delete_and_removal(client: Client, log: Log) -> None:
    owner = client.register("se")
    name = client.community(owner)
    cid = client.community_info(name)["community_id"]
    alpha = create_post(client, owner, name, "Alpha kangaroo", "one")
    beta = create_post(client, owner, name, "Beta kangaroo", "two")
    gamma = create_post(client, owner, name, "Gamma kangaroo", "three")
    wait_found(client, lambda i: len(i) == 3, what="3 posts", q="kangaroo", community=name)
    now = datetime.now(UTC)

    log.publish(
        POSTS.name,
        PostEdited(
            post_id=alpha,
            community_id=cid,
            author_id=owner.user_id,
            title="Alpha wombat",
            edited_at=now + timedelta(seconds=1),
        ),
        cid,
    )
    # an older edit arriving later never wins
    log.publish(
        POSTS.name,
        PostEdited(
            post_id=alpha, community_id=cid, author_id=owner.user_id, title="Stale", edited_at=now
        ),
        cid,
    )
    log.publish(
        POSTS.name,
        PostDeleted(post_id=beta, community_id=cid, author_id=owner.user_id, deleted_at=now),
        cid,
    )
    removal = ContentModerated(
        community_id=cid,
        target_id=gamma,
        target_type="post",
        post_id=gamma,
        author_id=owner.user_id,
        action="remove",
        actor_id=owner.user_id,
        at=now,
    )
    log.publish(MODERATION.name, removal, cid)
    wait_found(client, lambda i: i == [], what="old texts gone", q="kangaroo", community=name)
    edited = found(client, q="wombat", community=name)
    assert [(i["post_id"], i["title"]) for i in edited] == [(alpha, "Alpha wombat")]
    assert found(client, q="stale", community=name) == []

    approval = removal.model_copy(update={"action": "approve", "at": now + timedelta(seconds=1)})
    log.publish(MODERATION.name, approval, cid)
    back = wait_found(client, lambda i: len(i) == 1, what="approved", q="gamma", community=name)
    assert back[0]["post_id"] == gamma


def test_private_communities_only_for_members_and_shadow_bans_only_for_the_author(
    client: Client, log: Log
) -> None:
    owner, member, outsider = client.register("sp"), client.register("sm"), client.register("su")
    name = f"hidden{new_id()[-8:].lower()}"
    r = client.http.post(
        "/communities",
        json={"name": name, "description": "d", "visibility": "private"},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    joined = client.http.post(f"/communities/{name}/join", headers=member.headers)
    assert joined.status_code == 202, joined.text  # a private community: a join request
    approved = client.http.post(
        f"/communities/{name}/join-requests/{member.username}/approve", headers=owner.headers
    )
    assert approved.status_code == 200, approved.text
    create_post(client, owner, name, "Secret platypus plans", "shh")
    seen = wait_found(client, one, owner, "owner sees it", q="platypus", community=name)
    assert seen[0]["community"] == name
    wait_found(client, one, member, "member sees it", q="platypus", community=name)
    assert found(client, outsider, q="platypus", community=name) == []
    assert found(client, None, q="platypus", community=name) == []
    assert found(client, outsider, community=name) == []
    # autocomplete: the private community only for its members
    prefix = name[:-1]

    def member_lists_it() -> bool:
        # the community's own document is indexed from its topic, not with the post
        r = client.http.get("/communities", params={"prefix": prefix}, headers=member.headers)
        assert r.status_code == 200, r.text
        return name in [c["name"] for c in r.json()["items"]]

    wait_for(member_lists_it, timeout=WAIT, interval=0.1, what="member lists the community")
    hidden = client.http.get("/communities", params={"prefix": prefix}, headers=outsider.headers)
    assert name not in [c["name"] for c in hidden.json()["items"]]

    # a public community turned private: its posts leave everyone else's results
    public = client.community(owner)
    cid = client.community_info(public)["community_id"]
    create_post(client, owner, public, "Narwhal gathering", "x")
    wait_found(client, one, outsider, "public post", q="narwhal", community=public)
    log.publish(
        COMMUNITIES.name,
        CommunityUpdated(
            community_id=cid,
            name=public,
            description="now private",
            visibility="private",
            actor_id=owner.user_id,
            updated_at=datetime.now(UTC),
        ),
        cid,
    )
    wait_found(client, lambda i: i == [], outsider, "post hidden", q="narwhal", community=public)

    # shadow-ban: the author still finds the post, nobody else does (moderators do)
    open_name = client.community(owner)
    open_id = client.community_info(open_name)["community_id"]
    troll = client.register("st")
    create_post(client, troll, open_name, "Echidna rumble", "spam")
    wait_found(client, one, outsider, "troll post", q="echidna", community=open_name)
    log.publish(
        MODERATION.name,
        MemberSanctioned(
            community_id=open_id,
            user_id=troll.user_id,
            kind="shadow_ban",
            actor_id=owner.user_id,
            at=datetime.now(UTC),
        ),
        open_id,
    )
    wait_found(client, none, outsider, "shadow-banned", q="echidna", community=open_name)
    assert found(client, None, q="echidna", community=open_name) == []
    assert len(found(client, troll, q="echidna", community=open_name)) == 1
    # the community's moderator sees it too
    assert len(found(client, owner, q="echidna", community=open_name)) == 1


def test_a_new_member_finds_private_posts_in_their_very_next_search(client: Client) -> None:
    owner, joiner = client.register("so"), client.register("sj")
    name = f"closed{new_id()[-8:].lower()}"
    r = client.http.post(
        "/communities",
        json={"name": name, "description": "d", "visibility": "private"},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    create_post(client, owner, name, "Quokka census", "q")
    wait_found(client, one, owner, "owner sees it", q="quokka", community=name)
    assert client.http.post(f"/communities/{name}/join", headers=joiner.headers).status_code == 202
    assert found(client, joiner, q="quokka", community=name) == []  # asked, not yet approved
    approved = client.http.post(
        f"/communities/{name}/join-requests/{joiner.username}/approve", headers=owner.headers
    )
    assert approved.status_code == 200, approved.text
    # no wait: the approval is read on the next request, by whichever API process
    for _ in range(4):
        assert len(found(client, joiner, q="quokka", community=name)) == 1


def test_community_autocomplete_is_typo_tolerant(client: Client) -> None:
    owner = client.register("sa")
    name = f"pythonclub{new_id()[-6:].lower()}"
    r = client.http.post(
        "/communities", json={"name": name, "description": "snakes"}, headers=owner.headers
    )
    assert r.status_code == 201, r.text

    def listed() -> bool:
        r = client.http.get("/communities", params={"prefix": "pythnclub", "limit": 100})
        assert r.status_code == 200, r.text
        return name in [c["name"] for c in r.json()["items"]]

    wait_for(listed, timeout=WAIT, interval=0.1, what="typo prefix finds the community")
    assert client.http.get("/communities", params={"prefix": "x" * 65}).status_code == 400


def stack_sh(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEILI_PORT": str(urlparse(settings.meili_url).port)}
    return subprocess.run(
        ["bash", str(ROOT / "deploy" / "stack.sh"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_meilisearch_down_is_a_503_and_the_dataflow_catches_up(
    client: Client, settings: Any
) -> None:
    status = stack_sh(settings, "status")
    if "meilisearch up" not in " ".join(status.stdout.split()):
        pytest.skip("Meilisearch is not run by deploy/stack.sh from this state folder")
    owner = client.register("sd")
    name = client.community(owner)
    stopped = stack_sh(settings, "stop", "meilisearch")
    assert stopped.returncode == 0, stopped.stderr
    try:
        r = search(client, q="anything")
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert r.json()["error"]["code"] == "unavailable"
        # everything else keeps working: posting, reading, autocomplete (from Postgres)
        post_id = client.post(owner, name, "Written while search was down")
        assert client.get_post(post_id)["title"] == "Written while search was down"
        listed = client.http.get("/communities", params={"prefix": name})
        assert [c["name"] for c in listed.json()["items"]] == [name]
        ready = client.http.get("/readyz")
        assert ready.status_code == 503 and "meilisearch" in ready.json()["error"]["details"]
    finally:
        started = stack_sh(settings, "start", "meilisearch")
        assert started.returncode == 0, started.stdout + started.stderr
    hits = wait_found(client, lambda i: len(i) == 1, what="caught up", q="written", community=name)
    assert hits[0]["post_id"] == post_id


def documents(settings: Any) -> dict[str, dict[str, object]]:
    client = store.connect(settings)
    return {str(d["post_id"]): d for d in store.all_documents(client, store.POSTS)}


def test_replay_swaps_in_an_equal_index_while_queries_keep_answering(
    client: Client, platform: Any, settings: Any
) -> None:
    owner = client.register("sr")
    name = client.community(owner)
    for title in ("Replay lemur one", "Replay lemur two", "Replay lemur three"):
        create_post(client, owner, name, title, "body")
    expected = wait_found(client, lambda i: len(i) == 3, what="indexed", q="lemur", community=name)
    before = documents(settings)
    platform.flows["search"].stop()
    answers: list[tuple[int, frozenset[str]]] = []
    done = threading.Event()

    def query() -> None:
        with httpx.Client(base_url=f"{platform.base}/api/v1", timeout=30) as http:
            while not done.is_set():
                try:
                    r = http.get("/search", params={"q": "lemur", "community": name})
                except httpx.HTTPError as exc:  # recorded as a failed query
                    answers.append((0, frozenset({type(exc).__name__})))
                    continue
                ids = frozenset(i["post_id"] for i in r.json().get("items", []))
                answers.append((r.status_code, ids))

    reader = threading.Thread(target=query)
    reader.start()
    try:
        replay = subprocess.run(
            [sys.executable, "-m", "dataflows", "replay", "search", "--yes"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        done.set()
        reader.join()
        platform.restart_flow("search")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "replayed search" in replay.stdout
    want = frozenset(i["post_id"] for i in expected)
    assert len(answers) > 10
    assert all(status == 200 for status, _ in answers), {s for s, _ in answers}
    assert all(ids == want for _, ids in answers)
    after = documents(settings)
    assert after == before
    indexes = {i.uid for i in store.connect(settings).get_indexes()["results"]}
    assert store.POSTS + store.REBUILD_SUFFIX not in indexes
