"""Rate limiting of requests: before a route runs, the request takes a token from each
bucket that applies to it (its tier and its action quota, `domain.rate_limits`) in one
Redis call, or gets 429 with Retry-After. Every limited response carries the IETF
RateLimit-Policy / RateLimit headers of the tightest bucket.

The vote route takes its buckets inside the vote's own Lua call (no extra round trip):
here they are only computed (`pending_charges`). Login failures are counted by the
auth service (`client_of`).

The client address is used only to compute its salted daily hash; it is never stored
or logged. Behind a proxy the header to trust is configuration (TRUSTED_PROXY_HEADER,
off by default: the peer address counts)."""

from __future__ import annotations

import weakref
from datetime import UTC, datetime
from functools import lru_cache
from hashlib import sha256

from sanic import HTTPResponse, Request, Sanic

from api.http import optional_principal
from domain.errors import RateLimited, Unauthorized
from domain.rate_limits import (
    ACTIONS,
    INLINE_ACTIONS,
    Charge,
    Verdict,
    hash_client_address,
    is_loopback,
    request_charges,
)
from stores.settings import Settings

UNLIMITED_ROUTES = frozenset(
    {"healthz", "readyz", "metrics", "api/v1/healthz", "api/v1/readyz", "api/v1/metrics"}
)


class Client:
    """A request's client, its address read and hashed on first use: most requests are
    limited per user and never need the address, its hash or the loopback test (a
    development rule). It is kept in `request.ctx`, so it refers to the request weakly:
    a strong reference made every request a cycle, freed by the garbage collector
    instead of when it was answered."""

    __slots__ = ("_hash", "_loopback", "_request", "_secret")

    def __init__(self, request: Request, secret: str) -> None:
        self._request = weakref.ref(request)
        self._secret = secret
        self._hash: str | None = None
        self._loopback: bool | None = None

    @property
    def address(self) -> str:
        request = self._request()
        if request is None:
            return ""
        return request.remote_addr or request.ip or ""

    @property
    def address_hash(self) -> str:
        if self._hash is None:
            today = datetime.now(UTC).date()
            self._hash = hash_client_address(self.address, self._secret, today)
        return self._hash

    @property
    def loopback(self) -> bool:
        if self._loopback is None:
            self._loopback = is_loopback(self.address)
        return self._loopback


def ip_hash_secret(settings: Settings) -> str:
    """IP_HASH_SECRET, or one derived from the JWT secret when it is not set."""
    return settings.ip_hash_secret or _derived_secret(settings.jwt_secret)


@lru_cache(maxsize=4)
def _derived_secret(jwt_secret: str) -> str:
    return sha256(f"client-address-salt:{jwt_secret}".encode()).hexdigest()


def configure_proxy(app: Sanic, settings: Settings) -> None:
    """Trust the configured proxy header for the client address (Sanic resolves it into
    `request.remote_addr`); nothing is trusted by default."""
    header = settings.trusted_proxy_header.strip().lower()
    if not header:
        return
    if header == "x-forwarded-for":
        app.config.FORWARDED_FOR_HEADER = header
        app.config.PROXIES_COUNT = settings.trusted_proxy_count
    else:
        app.config.REAL_IP_HEADER = header


def client_of(request: Request) -> Client:
    cached: Client | None = getattr(request.ctx, "client", None)
    if cached is not None:
        return cached
    settings: Settings = request.app.ctx.platform.settings
    client = Client(request, ip_hash_secret(settings))
    request.ctx.client = client
    return client


def pending_charges(request: Request) -> list[Charge]:
    """The buckets a route takes itself, in its own Redis call (the vote)."""
    charges: list[Charge] = getattr(request.ctx, "rate_charges", [])
    return charges


def record(request: Request, verdict: Verdict) -> None:
    """The verdict whose headers the response carries."""
    request.ctx.rate_limit = verdict


async def take(request: Request) -> None:
    """Before a route runs: a token from each bucket that applies, or 429."""
    platform = request.app.ctx.platform
    config = platform.settings.rate_limits
    route = request.route.path if request.route else None
    if not config.enabled or route is None or route in UNLIMITED_ROUTES:
        return
    try:
        user = optional_principal(request)
    except Unauthorized:
        user = None  # the route answers 401 itself if it needs a user
    client = client_of(request)
    charges = request_charges(
        config,
        request.method,
        route,
        user.user_id if user else None,
        client,
    )
    if ACTIONS.get((request.method.upper(), route)) in INLINE_ACTIONS:
        request.ctx.rate_charges = charges
        return
    if not charges:
        return
    verdict = await platform.limiter.take(charges)
    record(request, verdict)
    if not verdict.allowed:
        raise RateLimited(verdict)


def add_headers(request: Request, response: HTTPResponse) -> None:
    """The RateLimit headers of the verdict the request met, if it met one."""
    verdict: Verdict | None = getattr(request.ctx, "rate_limit", None)
    if verdict is not None and "RateLimit" not in response.headers:
        for name, value in verdict.headers().items():
            response.headers[name] = value
