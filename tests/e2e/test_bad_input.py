"""Bad input: a clear 4xx JSON error, and nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from api.security import Principal, TokenService
from domain.ids import new_id, new_post_id
from schemas.topics import VOTES
from stores.kafka_admin import end_offsets


def assert_error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "details"} <= set(body["error"])
    if field:
        assert any(field in key for key in body["error"]["details"]), body
    return body["error"]


@pytest.fixture(scope="module")
def setup(client):
    user = client.register("bad")
    community = client.community(user)
    post_id = client.post(user, community)
    return user, community, post_id


def test_malformed_json(client, setup):
    user, _community, _post = setup
    r = client.http.put(
        "/votes",
        content=b'{"target_id": ',
        headers={**user.headers, "content-type": "application/json"},
    )
    assert_error(r, 400, "body")


def test_body_must_be_object(client, setup):
    user, *_ = setup
    assert_error(client.http.put("/votes", json=[1, 2], headers=user.headers), 400, "body")


@pytest.mark.parametrize("direction", ["1", True, 2, None, 1.5])
def test_wrong_types(client, setup, direction):
    user, _community, post_id = setup
    r = client.http.put(
        "/votes",
        json={"target_id": post_id, "target_type": "post", "direction": direction},
        headers=user.headers,
    )
    assert_error(r, 400)


def test_unknown_fields(client, setup):
    user, _community, post_id = setup
    r = client.http.put(
        "/votes",
        json={"target_id": post_id, "target_type": "post", "direction": 1, "weight": 100},
        headers=user.headers,
    )
    assert_error(r, 400, "weight")


def test_oversize_body(client, setup):
    user, community, _post = setup
    r = client.http.post(
        f"/communities/{community}/posts",
        json={"title": "big", "body": "x" * 200_000},
        headers=user.headers,
    )
    assert_error(r, 413)


def test_validation_names_the_field(client):
    r = client.http.post(
        "/auth/register", json={"username": "x!", "email": "nope", "password": "short"}
    )
    err = assert_error(r, 400)
    assert {"username", "email", "password"} <= set(err["details"])


def test_unknown_post_and_route(client, setup):
    user, *_ = setup
    assert_error(client.http.get("/posts/not-a-post"), 404)
    assert_error(client.http.get("/no/such/route"), 404)
    assert_error(client.vote(user, new_post_id(new_id()), 1), 404)
    # an old post id in a community that does not exist: existence is checked first
    old = "01JD0000000000000000000000-01JD0000000000000000000000"
    assert assert_error(client.vote(user, old, 1), 404)["code"] == "not_found"


def _claims(settings, **overrides):
    now = datetime.now(UTC)
    claims = {
        "sub": "someone",
        "name": "someone",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(overrides)
    return claims


def bad_tokens(settings) -> dict[str, str]:
    tokens = TokenService(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, 60)
    past = datetime.now(UTC) - timedelta(hours=1)
    return {
        "expired": tokens.issue(Principal("someone", "someone"), now=past),
        "wrong_key": jwt.encode(_claims(settings), "k" * 64, algorithm="HS256"),
        "alg_none": jwt.encode(_claims(settings), None, algorithm="none"),  # type: ignore[arg-type]
        "wrong_audience": jwt.encode(
            _claims(settings, aud="other"), settings.jwt_secret, algorithm="HS256"
        ),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize(
    "kind", ["expired", "wrong_key", "alg_none", "wrong_audience", "garbage", "missing"]
)
def test_bad_tokens_write_nothing(client, setup, settings, kind):
    _user, community, post_id = setup
    before = end_offsets(settings.kafka_bootstrap, VOTES.name)
    headers = {} if kind == "missing" else {"Authorization": f"Bearer {bad_tokens(settings)[kind]}"}
    r = client.http.put(
        "/votes",
        json={"target_id": post_id, "target_type": "post", "direction": 1},
        headers=headers,
    )
    assert_error(r, 401)
    r = client.http.post(f"/communities/{community}/posts", json={"title": "t"}, headers=headers)
    assert_error(r, 401)
    assert end_offsets(settings.kafka_bootstrap, VOTES.name) == before
    assert client.get_post(post_id)["score"] == 0


def test_duplicate_registration_conflicts(client, setup):
    user, *_ = setup
    r = client.http.post(
        "/auth/register",
        json={
            "username": user.username.upper(),
            "email": "other@example.com",
            "password": "long enough",
        },
    )
    assert_error(r, 409, "field")
