"""Rate limits as data: which buckets a request takes from, the client address hash, the
IETF RateLimit header values. No framework and no Redis here (stores/rate_limits.py
holds the buckets; api/limits.py applies them to requests).

A limit is a token bucket of `count` tokens refilled evenly over `window` seconds: a
client may burst `count` actions, then one more every `window / count` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from typing import Protocol

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window: float  # seconds

    @property
    def spec(self) -> str:
        return f"{self.count}/{self.window:g}"


def parse_limit(name: str, spec: str) -> Limit:
    """`count/seconds`, e.g. `5/3600`; ValueError for anything else."""
    count_text, sep, window_text = spec.strip().partition("/")
    if not sep:
        raise ValueError(f"rate limit {name}: expected count/seconds, got {spec!r}")
    count, window = int(count_text), float(window_text)
    if count < 1 or not math.isfinite(window) or window <= 0:
        raise ValueError(f"rate limit {name}: count >= 1 and seconds > 0, got {spec!r}")
    return Limit(name, count, window)


# Production defaults (API.md "Rate limits"). Scopes: `ip` (hashed client address) or
# `user`. Every one is configurable with RATE_LIMIT_<NAME>=count/seconds.
DEFAULTS: dict[str, Limit] = {
    limit.name: limit
    for limit in (
        Limit("anonymous_read", 300, 60),
        Limit("anonymous_write", 10, 60),
        Limit("user_write", 100, 60),
        Limit("login_failure_account", 5, 900),
        Limit("login_failure_ip", 5, 900),
        Limit("register", 5, 3600),
        Limit("post", 5, 3600),
        Limit("comment", 30, 3600),
        Limit("vote", 60, 60),
        Limit("community", 1, 86400),
        Limit("report", 10, 3600),
        Limit("upload", 10, 3600),
    )
}

# The per-action quotas of routes, by (method, Sanic route path). Actions are taken per
# user except `register` (per hashed client address: there is no user yet).
ACTIONS: dict[tuple[str, str], str] = {
    ("POST", "api/v1/auth/register"): "register",
    ("POST", "api/v1/communities/<name:str>/posts"): "post",
    ("POST", "api/v1/posts/<post_id:str>/comments"): "comment",
    ("PUT", "api/v1/votes"): "vote",
    ("POST", "api/v1/communities"): "community",
    ("POST", "api/v1/reports"): "report",
    ("POST", "api/v1/media"): "upload",
}
IP_ACTIONS = frozenset({"register"})
# Routes whose buckets are taken by the service in the same Redis call as its own work
# (the vote: one Lua call records the vote and takes the buckets).
INLINE_ACTIONS = frozenset({"vote"})


@dataclass(frozen=True)
class RateLimitConfig:
    enabled: bool = True
    limits: tuple[Limit, ...] = tuple(DEFAULTS.values())
    # Development profile: per-address limits (anonymous requests, registration, login
    # failures per address) do not apply to loopback clients.
    exempt_loopback: bool = False

    def limit(self, name: str) -> Limit:
        for limit in self.limits:
            if limit.name == name:
                return limit
        raise KeyError(name)

    def with_limits(self, overrides: dict[str, str]) -> RateLimitConfig:
        known = {limit.name: limit for limit in self.limits}
        for name, spec in overrides.items():
            if name not in known:
                raise ValueError(f"unknown rate limit {name!r}; known: {sorted(known)}")
            known[name] = parse_limit(name, spec)
        return replace(self, limits=tuple(known.values()))


@dataclass(frozen=True)
class Charge:
    """One bucket a request takes a token from: the limit and whose bucket it is."""

    limit: Limit
    subject: str  # a user id or a hashed client address


@lru_cache(maxsize=1024)
def is_loopback(address: str) -> bool:
    """Cached: a client's address repeats on every request of its connection."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=8)
def _day_salt(secret: str, day: date) -> bytes:
    """Computed once a day per secret, not per request."""
    return hmac.digest(secret.encode(), f"client-address:{day.isoformat()}".encode(), "sha256")


def hash_client_address(address: str, secret: str, day: date) -> str:
    """The client address as the platform keeps it: HMAC-SHA256 under a salt derived
    from a secret and the UTC day, so yesterday's hashes cannot be linked to today's and
    the address itself is never stored."""
    return hmac.new(_day_salt(secret, day), address.encode(), hashlib.sha256).hexdigest()[:32]


class ClientAddress(Protocol):
    """What the limits need of a client: its hashed address and whether it is local.
    Both are read only when a bucket of the request needs them (most signed-in
    requests are limited per user and never hash the address)."""

    @property
    def address_hash(self) -> str: ...

    @property
    def loopback(self) -> bool: ...


@dataclass(frozen=True)
class HashedAddress:
    """A client whose address was hashed already."""

    address_hash: str
    loopback: bool = False


def request_charges(
    config: RateLimitConfig,
    method: str,
    route: str | None,
    user_id: str | None,
    client: ClientAddress,
) -> list[Charge]:
    """The buckets a request takes from: its tier (anonymous by address, reads and
    writes; signed-in writes by user) and its action quota, if any."""
    if not config.enabled:
        return []
    # The loopback test parses the address: done only for buckets kept per address.
    write = method.upper() not in READ_METHODS
    charges: list[Charge] = []
    if user_id is None:
        if not (config.exempt_loopback and client.loopback):
            tier = "anonymous_write" if write else "anonymous_read"
            charges.append(Charge(config.limit(tier), client.address_hash))
    elif write:
        charges.append(Charge(config.limit("user_write"), user_id))
    action = ACTIONS.get((method.upper(), route or ""))
    if action is not None:
        if action in IP_ACTIONS:
            if not (config.exempt_loopback and client.loopback):
                charges.append(Charge(config.limit(action), client.address_hash))
        elif user_id is not None:
            charges.append(Charge(config.limit(action), user_id))
    return charges


def login_failure_charges(
    config: RateLimitConfig, account: str, client: ClientAddress
) -> list[Charge]:
    """Login failures count per account and per client address."""
    if not config.enabled:
        return []
    charges = [Charge(config.limit("login_failure_account"), account)]
    if not (config.exempt_loopback and client.loopback):
        charges.append(Charge(config.limit("login_failure_ip"), client.address_hash))
    return charges


@dataclass(frozen=True)
class Verdict:
    """The outcome of taking from some buckets, as the tightest one saw it."""

    allowed: bool
    limit: Limit | None = None  # None: no bucket applied
    remaining: int = 0
    reset: int = 0  # seconds until the bucket is full again
    retry_after: int = 0  # seconds until the request could pass (rejections)

    def headers(self) -> dict[str, str]:
        """IETF RateLimit-Policy and RateLimit header fields
        (draft-ietf-httpapi-ratelimit-headers: q quota, w window, r remaining, t reset)."""
        if self.limit is None:
            return {}
        name = self.limit.name
        out = {
            "RateLimit-Policy": f'"{name}";q={self.limit.count};w={math.ceil(self.limit.window)}',
            "RateLimit": f'"{name}";r={self.remaining};t={self.reset}',
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, self.retry_after))
        return out


ALLOWED = Verdict(True)
