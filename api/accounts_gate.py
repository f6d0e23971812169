"""Every authenticated request is checked against its account: a token issued before
the account's token epoch moved (password reset, deletion) or for a deleted account is
refused at once, and with enforcement on, an unverified account may not create
communities, posts or comments. Account states are cached per process for
`TTL` seconds, so a request costs no extra round trip while another worker's change
reaches this one within that time; while Postgres's change notices flow
(stores/cache_notices.py) a state lives `NOTICED_TTL` seconds and is forgotten the
moment it changes. While Postgres is unreachable the last state read is served
(`LastingCache`)."""

from __future__ import annotations

from api.lasting_cache import LastingCache
from api.security import Principal
from domain.errors import EmailNotVerified, Unauthorized
from stores.cache_notices import Notice
from stores.users import AccountState, UserStore

TTL = 1.0
NOTICED_TTL = 60.0
ENTRIES = 50_000


class AccountGate:
    def __init__(self, users: UserStore, require_verified_email: bool) -> None:
        self.users = users
        self.require_verified_email = require_verified_email
        self._cache: LastingCache[str, AccountState | None] = LastingCache(TTL, entries=ENTRIES)

    async def state(self, user_id: str) -> AccountState | None:
        return await self._cache.get(user_id, lambda: self.users.account_state(user_id))

    def forget(self, user_id: str) -> None:
        self._cache.forget(user_id)

    def notices_flowing(self, flowing: bool) -> None:
        self._cache.ttl = NOTICED_TTL if flowing else TTL
        self._cache.expire_all()

    def noticed(self, notice: Notice) -> None:
        if notice.kind == "account" and notice.user_id:
            self._cache.forget(notice.user_id)

    async def admit(self, principal: Principal, creates_content: bool) -> None:
        found = await self.state(principal.user_id)
        # Accounts are never removed, only emptied (deleted_at); a signed token naming
        # no account at all was minted outside sign-in (load generators) and has
        # nothing to revoke, so only the verification rule applies to it.
        if found is not None and (found.deleted or found.token_epoch != principal.epoch):
            raise Unauthorized("token revoked", {"token": "revoked"})
        verified = found is not None and found.email_verified
        if creates_content and self.require_verified_email and not verified:
            raise EmailNotVerified("verify your email address first", {"email_verified": False})
