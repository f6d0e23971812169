"""Idempotency-Key on creations, through the real API: a retry returns the first answer
and creates nothing new; keys are per user and route; concurrent first uses create once;
a failure does not pin the key."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.commands import CreatePost
from api.idempotency import fingerprint
from domain.ids import new_id
from stores.idempotency import KEEP_SECONDS, Claimed, IdempotencyKeys, idempotency_key
from stores.redis_store import async_client, sync_client
from tests.e2e.social import comment, tree, walk
from tests.e2e.test_bad_input import assert_error
from tests.processes import wait_for


def key() -> str:
    return f"k-{new_id()}"


@pytest.fixture(scope="module")
def world(client):
    owner, other = client.register("idem"), client.register("idem")
    community = client.community(owner)
    post_id = client.post(owner, community)
    return owner, other, community, post_id


def with_key(user, value: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": value}


def listed(client, community: str, marker: str) -> list[str]:
    """The community's posts once the ranking has listed `marker`, its latest post: the
    ranking applies a community's posts in log order, so every earlier one is listed."""

    def ids() -> list[str] | None:
        items = client.listing(f"/communities/{community}/posts?sort=new&limit=100")["items"]
        found = [p["post_id"] for p in items]
        return found if marker in found else None

    return wait_for(ids, timeout=30, what=f"post {marker} to be listed")


def test_a_retried_post_returns_the_first_answer_and_creates_nothing(client, world):
    owner, _other, _community, _post = world
    community = client.community(owner)
    k = key()
    body = {"title": "once", "kind": "text", "body": "only one of me"}
    first = client.http.post(
        f"/communities/{community}/posts", json=body, headers=with_key(owner, k)
    )
    assert first.status_code == 202, first.text
    again = client.http.post(
        f"/communities/{community}/posts", json=body, headers=with_key(owner, k)
    )
    assert again.status_code == 202 and again.content == first.content
    assert again.headers.get("idempotent-replayed") == "true"
    post_id = first.json()["post_id"]
    marker = client.post(owner, community, "after")
    assert sorted(listed(client, community, marker)) == sorted([post_id, marker])


def test_a_retried_community_and_comment_return_the_first_answer(client, world):
    owner, _other, community, _post = world
    name = f"c{new_id()[-12:].lower()}"
    k = key()
    answers = [
        client.http.post("/communities", json={"name": name}, headers=with_key(owner, k))
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 201], answers[0].text
    assert answers[0].content == answers[1].content

    post_id = client.post(owner, community, "comments once")
    k = key()
    answers = [
        client.http.post(
            f"/posts/{post_id}/comments", json={"body": "just once"}, headers=with_key(owner, k)
        )
        for _ in range(3)
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    comment(client, owner, post_id, "later")

    def bodies() -> list[str] | None:
        found = sorted(c["body"] for c in walk(tree(client, post_id, depth=10)["items"]))
        return found if "later" in found else None

    # Comments of a post are applied in log order: once "later" shows, so would a copy.
    assert wait_for(bodies, timeout=30, what="the later comment") == ["just once", "later"]


def test_keys_are_per_user_and_per_route(client, world):
    owner, other, community, post_id = world
    k = key()
    body = {"title": "same key", "kind": "text"}
    mine = client.http.post(
        f"/communities/{community}/posts", json=body, headers=with_key(owner, k)
    )
    theirs = client.http.post(
        f"/communities/{community}/posts", json=body, headers=with_key(other, k)
    )
    assert mine.status_code == theirs.status_code == 202, theirs.text
    assert mine.json()["post_id"] != theirs.json()["post_id"]
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["author"] == other.username
    comment = client.http.post(
        f"/posts/{post_id}/comments", json={"body": "same key"}, headers=with_key(owner, k)
    )
    assert comment.status_code == 202 and "comment_id" in comment.json()


def test_the_same_key_with_another_request_is_refused(client, world):
    owner, _other, community, _post = world
    k = key()
    path = f"/communities/{community}/posts"
    r = client.http.post(path, json={"title": "a", "kind": "text"}, headers=with_key(owner, k))
    assert r.status_code == 202
    r = client.http.post(path, json={"title": "b", "kind": "text"}, headers=with_key(owner, k))
    assert assert_error(r, 422, "Idempotency-Key")["code"] == "idempotency_key_reused"


def test_concurrent_first_uses_create_once(client, platform, world):
    owner, _other, _community, _post = world
    community = client.community(owner)
    k = key()
    clients = [httpx.Client(base_url=f"{platform.base}/api/v1", timeout=30) for _ in range(8)]
    for http in clients:  # connected before the race
        assert http.get(f"/communities/{community}").status_code == 200
    start = threading.Barrier(len(clients))

    def send(http: httpx.Client) -> httpx.Response:
        start.wait(10)
        return http.post(
            f"/communities/{community}/posts",
            json={"title": "raced", "kind": "text"},
            headers=with_key(owner, k),
        )

    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            answers = list(pool.map(send, clients))
    finally:
        for http in clients:
            http.close()
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {202, 409}, [a.text for a in answers]
    for a in answers:
        if a.status_code == 409:
            assert a.json()["error"]["code"] == "idempotency_key_in_use"
            assert a.headers.get("retry-after") == "1"
    created = {a.json()["post_id"] for a in answers if a.status_code == 202}
    assert len(created) == 1, created
    replayed = [a for a in answers if a.headers.get("idempotent-replayed")]
    assert len(replayed) == statuses.count(202) - 1
    marker = client.post(owner, community, "after the race")
    assert sorted(listed(client, community, marker)) == sorted([*created, marker])


def test_a_key_held_by_a_running_request_answers_409(client, settings, world):
    owner, _other, community, _post = world
    k = key()
    path = f"/communities/{community}/posts"
    body = {"title": "held", "kind": "text"}
    held = asyncio.run(
        hold(
            settings,
            owner.user_id,
            k,
            fingerprint("POST", f"/api/v1{path}", CreatePost.model_validate(body)),
        )
    )
    assert isinstance(held, Claimed)
    r = client.http.post(path, json=body, headers=with_key(owner, k))
    assert assert_error(r, 409, "Idempotency-Key")["code"] == "idempotency_key_in_use"
    assert r.headers.get("retry-after") == "1"
    asyncio.run(release(settings, held))
    r = client.http.post(path, json=body, headers=with_key(owner, k))
    assert r.status_code == 202, r.text


async def hold(settings, user_id: str, k: str, fp: str) -> object:
    redis = async_client(settings.redis_url)
    try:
        return await IdempotencyKeys(redis).claim(user_id, "posts", k, fp)
    finally:
        await redis.aclose()


async def release(settings, claim: Claimed) -> None:
    redis = async_client(settings.redis_url)
    try:
        assert await IdempotencyKeys(redis).release(claim)
    finally:
        await redis.aclose()


def test_a_failure_does_not_pin_the_key(client, world):
    owner, _other, _community, _post = world
    name = f"c{new_id()[-12:].lower()}"
    k = key()
    path = f"/communities/{name}/posts"
    body = {"title": "too early", "kind": "text"}
    assert_error(client.http.post(path, json=body, headers=with_key(owner, k)), 404)
    r = client.http.post("/communities", json={"name": name}, headers=owner.headers)
    assert r.status_code == 201
    r = client.http.post(path, json=body, headers=with_key(owner, k))
    assert r.status_code == 202, r.text
    assert "idempotent-replayed" not in r.headers


@pytest.mark.parametrize(
    "value",
    ["", "x" * 256, "tab\there", "caf\u00e9", "a\u0080b"],
    ids=["empty", "too-long", "tab", "latin1", "c1"],
)
def test_invalid_keys_are_refused(client, world, value):
    owner, _other, community, _post = world
    headers = {**owner.headers, "Idempotency-Key": value.encode("latin-1")}
    r = client.http.post(
        f"/communities/{community}/posts",
        json={"title": "k", "kind": "text"},
        headers=headers,
    )
    assert_error(r, 400, "Idempotency-Key")


def test_longest_key_and_its_lifetime(client, settings, world):
    owner, _other, community, _post = world
    k = "k" * 255
    r = client.http.post(
        f"/communities/{community}/posts",
        json={"title": "long key", "kind": "text"},
        headers=with_key(owner, k),
    )
    assert r.status_code == 202, r.text
    ttl = int(sync_client(settings.redis_url).ttl(idempotency_key(owner.user_id, "posts", k)))  # type: ignore[arg-type]
    assert KEEP_SECONDS - 60 < ttl <= KEEP_SECONDS


def test_openapi_documents_the_header_on_creations(platform):
    doc = httpx.get(f"{platform.base}/api/v1/openapi.json").json()
    for path in (
        "/api/v1/communities",
        "/api/v1/communities/{name}/posts",
        "/api/v1/posts/{post_id}/comments",
    ):
        params = doc["paths"][path]["post"]["parameters"]
        assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params), path


def test_a_replay_is_the_first_answer_after_materialisation(client, world):
    owner, _other, _community, post_id = world
    k = key()
    first = client.http.post(
        f"/posts/{post_id}/comments", json={"body": "materialised"}, headers=with_key(owner, k)
    )
    assert first.status_code == 202
    comment_id = first.json()["comment_id"]
    wait_for(
        lambda: (
            comment_id
            in {c["comment_id"] for c in client.listing(f"/posts/{post_id}/comments")["items"]}
        ),
        timeout=30,
        what="the comment to be readable",
    )
    again = client.http.post(
        f"/posts/{post_id}/comments", json={"body": "materialised"}, headers=with_key(owner, k)
    )
    assert again.content == first.content
