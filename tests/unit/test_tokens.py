import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from api.security import Principal, TokenService
from domain.errors import Unauthorized

SECRET = "s" * 64


def service() -> TokenService:
    return TokenService(SECRET, "agora", "agora-api", 60)


def test_round_trip_and_cache():
    tokens = service()
    token = tokens.issue(Principal("u1", "alice"))
    assert tokens.verify(token) == Principal("u1", "alice")
    assert tokens.verify(token) == Principal("u1", "alice")  # served from the cache


def test_an_expired_cache_entry_is_checked_again(monkeypatch):
    tokens = service()
    token = tokens.issue(Principal("u1", "alice"))
    tokens.verify(token)
    _expires, principal = tokens._verified[token]
    tokens._verified[token] = (time.time() - 1, principal)  # the token's exp has passed
    checked: list[str] = []

    def decode(raw: str):
        checked.append(raw)
        raise Unauthorized("token expired")

    monkeypatch.setattr(tokens, "_decode", decode)
    with pytest.raises(Unauthorized):
        tokens.verify(token)
    assert checked == [token]


@pytest.mark.parametrize("algorithm", ["none", "HS512"])
def test_only_hs256_is_accepted(algorithm):
    now = datetime.now(UTC)
    claims = {
        "sub": "u",
        "name": "n",
        "iss": "agora",
        "aud": "agora-api",
        "iat": now,
        "exp": now + timedelta(minutes=1),
    }
    key = None if algorithm == "none" else SECRET
    token = jwt.encode(claims, key, algorithm=algorithm)  # type: ignore[arg-type]
    with pytest.raises(Unauthorized):
        service().verify(token)


def test_missing_claims_are_refused():
    token = jwt.encode({"sub": "u", "name": "n"}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        service().verify(token)


def test_short_secret_refused():
    with pytest.raises(ValueError):
        TokenService("short", "agora", "agora-api", 60)
