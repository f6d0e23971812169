"""The account lifecycle end to end: verification codes and password resets read from
the mail Mailpit received, enumeration-safe answers, enforcement, and deletion that
holds under a replay of every dataflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis
from confluent_kafka import Consumer, TopicPartition

from domain.ids import new_id
from schemas.topics import CATALOG
from stores.codes import code_key
from tests.e2e.conftest import DATAFLOWS, Client, User
from tests.mailbox import code_in, messages_to, wait_for_mail
from tests.processes import start_api, wait_for

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def email_of(user: User) -> str:
    return f"{user.username}@example.com"


def verification_code(user: User, count: int = 1) -> str:
    return code_in(wait_for_mail(email_of(user), count)[0])


def user_row(settings, user_id: str) -> dict[str, object]:
    async def fetch() -> dict[str, object]:
        conn = await asyncpg.connect(settings.dsn(settings.identity_db))
        try:
            row = await conn.fetchrow("SELECT * FROM users WHERE user_id = $1", user_id)
            assert row is not None
            return dict(row)
        finally:
            await conn.close()

    import asyncio

    return asyncio.run(fetch())


def test_registration_mails_a_code_that_verifies_the_address(client: Client) -> None:
    user = client.register("ver")
    me = client.http.get("/users/me", headers=user.headers)
    assert me.status_code == 200
    assert me.json()["email"] == email_of(user)
    assert me.json()["email_verified"] is False
    code = verification_code(user)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    r = client.http.post("/auth/verify-email", json={"email": email_of(user), "code": wrong})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_code"
    r = client.http.post("/auth/verify-email", json={"email": email_of(user), "code": code})
    assert r.status_code == 200, r.text
    assert client.http.get("/users/me", headers=user.headers).json()["email_verified"] is True
    # a used code is gone
    r = client.http.post("/auth/verify-email", json={"email": email_of(user), "code": code})
    assert r.status_code == 400
    # the public profile never shows the address
    profile = client.http.get(f"/users/{user.username}").json()
    assert "email" not in profile and email_of(user) not in str(profile)


def test_resend_replaces_the_code(client: Client) -> None:
    user = client.register("res")
    first = verification_code(user)
    r = client.http.post("/auth/verify-email/resend", json={"email": email_of(user)})
    assert r.status_code == 202
    second = verification_code(user, 2)
    if second != first:  # one chance in a million that both are equal
        r = client.http.post("/auth/verify-email", json={"email": email_of(user), "code": first})
        assert r.status_code == 400
    r = client.http.post("/auth/verify-email", json={"email": email_of(user), "code": second})
    assert r.status_code == 200


def test_five_wrong_tries_use_the_code_up(client: Client) -> None:
    user = client.register("try")
    code = verification_code(user)
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    for _ in range(5):
        r = client.http.post("/auth/verify-email", json={"email": email_of(user), "code": wrong})
        assert r.status_code == 400
        assert r.json()["error"]["details"]["code"] == "invalid"
    r = client.http.post("/auth/verify-email", json={"email": email_of(user), "code": code})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["code"] == "expired"


def test_codes_live_five_minutes(client: Client, settings) -> None:
    user = client.register("exp")
    code = verification_code(user)
    r = redis.Redis.from_url(settings.redis_url)
    key = code_key("verify", user.user_id)
    ttl = int(r.ttl(key))  # type: ignore[arg-type]
    assert 290 <= ttl <= 300
    # what five minutes do, at once: the key expires
    r.pexpire(key, 1)
    wait_for(lambda: not r.exists(key), timeout=5, what="the code to expire")
    r.close()
    resp = client.http.post("/auth/verify-email", json={"email": email_of(user), "code": code})
    assert resp.status_code == 400
    assert resp.json()["error"]["details"]["code"] == "expired"


def test_answers_do_not_tell_whether_an_address_is_registered(client: Client) -> None:
    user = client.register("enu")
    known, unknown = email_of(user), f"nobody{new_id()[-8:].lower()}@example.com"
    for path in ("/auth/verify-email/resend", "/auth/password-reset"):
        a = client.http.post(path, json={"email": known})
        b = client.http.post(path, json={"email": unknown})
        assert (
            (a.status_code, a.json())
            == (b.status_code, b.json())
            == (
                202,
                {"status": "accepted"},
            )
        )
    for path, extra in (
        ("/auth/verify-email", {}),
        ("/auth/password-reset/confirm", {"new_password": "another password"}),
    ):
        a = client.http.post(path, json={"email": known, "code": "000000", **extra})
        b = client.http.post(path, json={"email": unknown, "code": "000000", **extra})
        assert a.status_code == b.status_code == 400
        assert a.json()["error"]["code"] == b.json()["error"]["code"] == "invalid_code"
    assert messages_to(unknown) == []  # nothing is ever mailed to an unknown address


def test_password_reset_revokes_every_session(client: Client) -> None:
    user = client.register("rst")
    second_session = client.login(user.username, user.password)
    asked = client.http.post("/auth/password-reset", json={"email": email_of(user)})
    assert asked.status_code == 202
    mails = wait_for_mail(email_of(user), 2)  # verification, then the reset
    code = code_in(next(t for t in mails if "reset" in t))
    r = client.http.post(
        "/auth/password-reset/confirm",
        json={"email": email_of(user), "code": code, "new_password": "a brand new secret"},
    )
    assert r.status_code == 200, r.text
    for refresh in (user.refresh, second_session["refresh_token"]):
        assert client.http.post("/auth/refresh", json={"refresh_token": refresh}).status_code == 401
    # access tokens issued before the reset are refused (within the gate's short cache)
    wait_for(
        lambda: client.http.get("/users/me", headers=user.headers).status_code == 401,
        timeout=3,
        what="the old access token to be refused",
    )
    bad = client.http.post("/auth/login", json={"login": user.username, "password": user.password})
    assert bad.status_code == 401
    fresh = client.login(email_of(user), "a brand new secret")
    me = client.http.get("/users/me", headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert me.status_code == 200


def test_enforcement_refuses_unverified_accounts(platform) -> None:
    api, base = start_api(platform.log_dir, env={"REQUIRE_VERIFIED_EMAIL": "true"})
    try:
        strict = Client(base)
        user = strict.register("enf")
        r = strict.http.post(
            "/communities", json={"name": f"c{new_id()[-12:].lower()}"}, headers=user.headers
        )
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "email_not_verified"
        code = verification_code(user)
        ok = strict.http.post("/auth/verify-email", json={"email": email_of(user), "code": code})
        assert ok.status_code == 200
        wait_for(
            lambda: (
                strict.http.post(
                    "/communities",
                    json={"name": f"c{new_id()[-12:].lower()}"},
                    headers=user.headers,
                ).status_code
                == 201
            ),
            timeout=3,
            what="a verified account to create a community",
        )
    finally:
        api.stop()


def _log_contains(bootstrap: str, needle: bytes) -> bool:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"scan-{new_id()}",
            "enable.auto.commit": False,
        }
    )
    try:
        found = False
        for topic in CATALOG:
            parts = [TopicPartition(topic.name, p, 0) for p in range(topic.partitions)]
            ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in parts}
            consumer.assign(parts)
            remaining = {p: e for p, e in ends.items() if e > 0}
            while remaining:
                msg = consumer.poll(5)
                if msg is None:
                    break
                if msg.error():
                    continue
                if needle in (msg.value() or b"") or needle in (msg.key() or b""):
                    found = True
                partition, offset = msg.partition() or 0, msg.offset() or 0
                if offset + 1 >= remaining.get(partition, 0):
                    remaining.pop(partition, None)
            consumer.unassign()
        return found
    finally:
        consumer.close()


@pytest.mark.slow
def test_deletion_purges_the_account_and_survives_replay(client: Client, platform, settings):
    author, other = client.register("del"), client.register("oth")
    community = client.community(other)
    post_id = client.post(author, community, title="soon without an author")
    r = client.http.post(
        f"/posts/{post_id}/comments",
        json={"body": f"hello u/{other.username}"},
        headers=author.headers,
    )
    assert r.status_code == 202
    comment_id = r.json()["comment_id"]
    assert client.vote(author, post_id, 1).status_code == 200
    assert client.vote(other, post_id, 1).status_code == 200

    def comment_author() -> str | None:
        tree = client.http.get(f"/posts/{post_id}/comments").json()["items"]
        return next((c["author"] for c in tree if c["comment_id"] == comment_id), None)

    def notified_by() -> list[str]:
        items = client.http.get("/notifications", headers=other.headers).json()["items"]
        return [n["actor"] for n in items if n["target_id"] == comment_id]

    wait_for(lambda: comment_author() == author.username, timeout=60, what="the comment")
    wait_for(lambda: notified_by() == [author.username], timeout=60, what="the mention")
    wait_for(lambda: client.get_post(post_id)["score"] == 2, timeout=60, what="both votes counted")

    wrong = client.http.request(
        "DELETE", "/users/me", json={"password": "not it at all"}, headers=author.headers
    )
    assert wrong.status_code == 401
    r = client.http.request(
        "DELETE", "/users/me", json={"password": author.password}, headers=author.headers
    )
    assert r.status_code == 204, r.text

    # sessions end at once
    assert client.http.get("/users/me", headers=author.headers).status_code == 401
    refresh = client.http.post("/auth/refresh", json={"refresh_token": author.refresh})
    assert refresh.status_code == 401
    login = client.http.post(
        "/auth/login", json={"login": author.username, "password": author.password}
    )
    assert login.status_code == 401
    # the profile is gone and the name is never issued again
    assert client.http.get(f"/users/{author.username}").status_code == 404
    again = client.http.post(
        "/auth/register",
        json={"username": author.username, "email": "x" + email_of(author), "password": PASSWORD},
    )
    assert again.status_code == 409
    # PII purged from the identity database
    row = user_row(settings, author.user_id)
    assert row["email"] is None and row["email_hash"] is None and row["email_sealed"] is None
    assert row["password_hash"] is None and row["deleted_at"] is not None
    assert author.username not in str(row["username"])

    def shows_deleted() -> bool:
        post = client.get_post(post_id)
        listing = client.listing(f"/communities/{community}/posts?sort=new")["items"]
        return (
            post["author"] == "[deleted]"
            and all(p["author"] == "[deleted]" for p in listing if p["post_id"] == post_id)
            and comment_author() == "[deleted]"
            and notified_by() == ["[deleted]"]
        )

    wait_for(shows_deleted, timeout=60, what="the author to show as [deleted]")
    assert client.get_post(post_id)["score"] == 2  # the deleted account's vote still counts

    # a replay of every dataflow from the start of the log does not bring the name back
    for name in DATAFLOWS:
        platform.flows[name].stop()
        result = subprocess.run(
            [sys.executable, "-m", "dataflows", "replay", name, "--yes"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        platform.restart_flow(name)
    wait_for(shows_deleted, timeout=60, what="[deleted] after the replays")
    assert client.get_post(post_id)["score"] == 2
    everything = httpx.get(f"{platform.base}/api/v1/posts/{post_id}").text
    assert author.username not in everything
    # no event in the log holds the address in clear
    assert not _log_contains(settings.kafka_bootstrap, email_of(author).encode())
