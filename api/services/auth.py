"""Registration, login and refresh-token rotation."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from api.commands import Login, Register
from api.security import (
    Principal,
    TokenService,
    hash_password,
    new_refresh_token,
    token_digest,
    verify_password,
)
from api.services.accounts import AccountService
from domain.errors import RateLimited, Unauthorized
from domain.ids import new_id
from domain.rate_limits import (
    ClientAddress,
    HashedAddress,
    RateLimitConfig,
    login_failure_charges,
)
from schemas.envelope import new_event
from schemas.events import UserRegistered
from stores.rate_limits import RateLimiter
from stores.refresh_tokens import RefreshTokenStore
from stores.users import UserRow, UserStore

NO_ADDRESS = HashedAddress("")  # callers outside HTTP: only the per-account bucket counts


class AuthService:
    def __init__(
        self,
        users: UserStore,
        refresh_tokens: RefreshTokenStore,
        tokens: TokenService,
        refresh_ttl: int,
        accounts: AccountService,
        limiter: RateLimiter | None = None,
        limits: RateLimitConfig | None = None,
    ) -> None:
        self.accounts = accounts
        self.users = users
        self.refresh_tokens = refresh_tokens
        self.tokens = tokens
        self.refresh_ttl = refresh_ttl
        self.limiter = limiter
        self.limits = limits or RateLimitConfig(enabled=False)

    async def register(self, cmd: Register) -> dict[str, Any]:
        # Argon2id is deliberately slow: keep it off the event loop.
        password_hash = await asyncio.to_thread(hash_password, cmd.password)
        user = UserRow(new_id(), cmd.username, password_hash, datetime.now(UTC))
        event = new_event(
            UserRegistered(
                user_id=user.user_id, username=user.username, created_at=user.created_at
            ),
            key=user.user_id,
        )
        await self.users.create_user(user, str(cmd.email), event)
        await self.accounts.send_verification(user.user_id, str(cmd.email))
        return {"user_id": user.user_id, "username": user.username}

    async def login(self, cmd: Login, client: ClientAddress = NO_ADDRESS) -> dict[str, Any]:
        user = await self.users.find_user_by_login(cmd.login)
        # Failures are counted per account and per client address: a token is taken
        # before the password is checked (an empty bucket answers 429 without checking
        # it, so timing tells nothing) and given back when the password is right.
        account = user.user_id if user else _unknown_account(cmd.login)
        charges = login_failure_charges(self.limits, account, client)
        if self.limiter is not None and charges:
            verdict = await self.limiter.take(charges)
            if not verdict.allowed:
                raise RateLimited(verdict)
        ok = await asyncio.to_thread(
            verify_password, user.password_hash if user else None, cmd.password
        )
        if not ok or user is None:
            raise Unauthorized("wrong login or password")
        if self.limiter is not None and charges:
            await self.limiter.refund(charges)
        return await self._issue(Principal(user.user_id, user.username, user.token_epoch), new_id())

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        new_token = new_refresh_token()
        rotated = await self.refresh_tokens.rotate_refresh_token(
            token_digest(refresh_token), token_digest(new_token), self._refresh_expiry()
        )
        if rotated is None:
            raise Unauthorized("refresh token is not valid", {"refresh_token": "revoked"})
        user_id, _family = rotated
        user = await self.users.find_user_by_id(user_id)
        if user is None:
            raise Unauthorized("account no longer exists")
        return self._pair(Principal(user.user_id, user.username, user.token_epoch), new_token)

    async def logout(self, refresh_token: str) -> None:
        await self.refresh_tokens.revoke_refresh_token(token_digest(refresh_token))

    async def _issue(self, principal: Principal, family_id: str) -> dict[str, Any]:
        token = new_refresh_token()
        await self.refresh_tokens.store_refresh_token(
            token_digest(token), family_id, principal.user_id, self._refresh_expiry()
        )
        return self._pair(principal, token)

    def _pair(self, principal: Principal, refresh_token: str) -> dict[str, Any]:
        return {
            "access_token": self.tokens.issue(principal),
            "refresh_token": refresh_token,
            "token_type": "bearer",
            "expires_in": self.tokens.ttl_seconds,
        }

    def _refresh_expiry(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.refresh_ttl)


def _unknown_account(login: str) -> str:
    """The bucket subject for a login that names no account (hashed: it may be an
    email address)."""
    return "unknown-" + hashlib.sha256(login.strip().lower().encode()).hexdigest()[:32]
