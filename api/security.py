"""Password hashing (Argon2id, RFC 9106 low-memory profile) and JWT access tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from domain.errors import Unauthorized

ALGORITHMS = ["HS256"]  # the allow-list: a token naming any other algorithm is refused

_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
_DUMMY_HASH = _hasher.hash("timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the user exists (a dummy hash stands in)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    epoch: int = 0  # the account's token epoch when the token was issued


class TokenService:
    CACHE_ENTRIES = 50_000

    def __init__(self, secret: str, issuer: str, audience: str, ttl_seconds: int) -> None:
        if len(secret) < 32:
            raise ValueError("JWT secret must be at least 32 characters")
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        # token -> (expiry, principal): a signature checked once need not be checked
        # again on every request of the same client until the token expires.
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def issue(self, principal: Principal, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        claims = {
            "sub": principal.user_id,
            "name": principal.username,
            "ep": principal.epoch,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + timedelta(seconds=self.ttl_seconds),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHMS[0])

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None and cached[0] > time.time():
            return cached[1]
        principal, expires = self._decode(token)
        self._verified[token] = (expires, principal)
        if len(self._verified) > self.CACHE_ENTRIES:
            self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired", {"token": "expired"}) from None
        except jwt.PyJWTError:
            raise Unauthorized("token invalid", {"token": "invalid"}) from None
        name = claims.get("name")
        epoch = claims.get("ep", 0)
        if (
            not isinstance(claims["sub"], str)
            or not isinstance(name, str)
            or not isinstance(epoch, int)
        ):
            raise Unauthorized("token invalid", {"token": "invalid"})
        return Principal(claims["sub"], name, epoch), float(claims["exp"])
