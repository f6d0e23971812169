from __future__ import annotations

from datetime import date

import pytest

from domain.rate_limits import (
    ACTIONS,
    DEFAULTS,
    HashedAddress,
    Limit,
    RateLimitConfig,
    Verdict,
    hash_client_address,
    is_loopback,
    login_failure_charges,
    parse_limit,
    request_charges,
)

LOCAL = HashedAddress("h", loopback=True)
REMOTE = HashedAddress("h")


def names(charges) -> list[tuple[str, str]]:
    return [(c.limit.name, c.subject) for c in charges]


def test_defaults_are_those_of_the_contract() -> None:
    expected = {
        "anonymous_read": (300, 60),
        "anonymous_write": (10, 60),
        "user_write": (100, 60),
        "login_failure_account": (5, 900),
        "login_failure_ip": (5, 900),
        "register": (5, 3600),
        "post": (5, 3600),
        "comment": (30, 3600),
        "vote": (60, 60),
        "community": (1, 86400),
        "report": (10, 3600),
        "upload": (10, 3600),
    }
    assert {n: (lim.count, lim.window) for n, lim in DEFAULTS.items()} == expected


def test_parse_and_override() -> None:
    assert parse_limit("post", "7/60") == Limit("post", 7, 60)
    for bad in ("7", "0/60", "5/0", "x/1", "5/-1", "5/inf"):
        with pytest.raises(ValueError):
            parse_limit("post", bad)
    config = RateLimitConfig().with_limits({"post": "50/3600"})
    assert config.limit("post").count == 50
    assert config.limit("comment").count == 30
    with pytest.raises(ValueError):
        RateLimitConfig().with_limits({"posts": "1/1"})


def test_tiers_and_actions() -> None:
    config = RateLimitConfig()
    post_route = "api/v1/communities/<name:str>/posts"
    assert names(request_charges(config, "GET", "api/v1/feed", None, REMOTE)) == [
        ("anonymous_read", "h")
    ]
    assert request_charges(config, "GET", "api/v1/feed", "u1", REMOTE) == []
    assert names(request_charges(config, "POST", post_route, "u1", REMOTE)) == [
        ("user_write", "u1"),
        ("post", "u1"),
    ]
    assert names(request_charges(config, "POST", "api/v1/auth/register", None, REMOTE)) == [
        ("anonymous_write", "h"),
        ("register", "h"),
    ]


def test_development_profile_exempts_loopback_only_from_address_limits() -> None:
    dev = RateLimitConfig(exempt_loopback=True)
    assert request_charges(dev, "POST", "api/v1/auth/register", None, LOCAL) == []
    assert names(request_charges(dev, "POST", "api/v1/auth/register", None, REMOTE)) == [
        ("anonymous_write", "h"),
        ("register", "h"),
    ]
    assert names(request_charges(dev, "PUT", "api/v1/votes", "u1", LOCAL)) == [
        ("user_write", "u1"),
        ("vote", "u1"),
    ]
    assert names(login_failure_charges(dev, "acct", LOCAL)) == [("login_failure_account", "acct")]
    assert request_charges(RateLimitConfig(enabled=False), "PUT", "api/v1/votes", "u", REMOTE) == []


def test_address_hash_is_salted_and_rotates_daily() -> None:
    a = hash_client_address("203.0.113.5", "s1", date(2026, 12, 2))
    assert a == hash_client_address("203.0.113.5", "s1", date(2026, 12, 2))
    assert a != hash_client_address("203.0.113.5", "s1", date(2026, 12, 3))
    assert a != hash_client_address("203.0.113.5", "s2", date(2026, 12, 2))
    assert "203" not in a and len(a) == 32
    assert is_loopback("127.0.0.1") and is_loopback("::1")
    assert not is_loopback("203.0.113.5") and not is_loopback("not an address")


def test_headers() -> None:
    verdict = Verdict(False, Limit("post", 5, 3600), 0, 3600, 720)
    assert verdict.headers() == {
        "RateLimit-Policy": '"post";q=5;w=3600',
        "RateLimit": '"post";r=0;t=3600',
        "Retry-After": "720",
    }
    assert Verdict(True).headers() == {}


def test_every_action_names_a_served_route() -> None:
    from api.app import create_app

    app = create_app("limits_routes")
    served = {(m, r.path) for r in app.router.routes for m in r.methods}
    # reports and uploads arrive with their routes (governance, media)
    missing = {k for k, a in ACTIONS.items() if k not in served and a not in ("report", "upload")}
    assert not missing
