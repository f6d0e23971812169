"""The account lifecycle: email verification, password reset by emailed code, the
signed-in user's own profile, and deletion.

None of the routes that take an address tells whether it belongs to an account: the
answer is the same (202, or 400 `invalid_code`) and so is the work done on the request
path (mail goes out later, from the queue).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from api.accounts_gate import AccountGate
from api.security import Principal, hash_password, verify_password
from domain import accounts
from domain.errors import Unauthorized, ValidationFailed
from schemas.envelope import new_event
from schemas.events import UserDeleted
from stores.codes import CODE_TTL, CodeCheck, OneTimeCodes
from stores.karma import KarmaStore
from stores.mail_queue import Mail, MailQueue
from stores.pii import EmailVault
from stores.users import UserStore

INVALID_CODE = "the code is wrong or has expired; ask for a new one"


class InvalidCode(ValidationFailed):
    code = "invalid_code"


class AccountService:
    def __init__(
        self,
        users: UserStore,
        codes: OneTimeCodes,
        mail: MailQueue,
        vault: EmailVault,
        karma: KarmaStore,
        gate: AccountGate,
    ) -> None:
        self.users = users
        self.codes = codes
        self.mail = mail
        self.vault = vault
        self.karma = karma
        self.gate = gate

    async def _send_code(self, purpose: str, user_id: str, email: str) -> None:
        code = accounts.new_code()
        await self.codes.issue(purpose, user_id, self.vault.code_digest(purpose, user_id, code))
        make = accounts.verification_mail if purpose == accounts.VERIFY else accounts.reset_mail
        subject, text = make(code, CODE_TTL // 60)
        await self.mail.push(Mail(email, subject, text))

    async def send_verification(self, user_id: str, email: str) -> None:
        await self._send_code(accounts.VERIFY, user_id, email)

    async def resend_verification(self, email: str) -> None:
        user = await self.users.find_user_by_email(email)
        if user is None or user.email_verified:
            return
        if await self.codes.may_send(accounts.VERIFY, user.user_id):
            await self.send_verification(user.user_id, email)

    async def _check(self, purpose: str, email: str, code: str) -> str:
        user = await self.users.find_user_by_email(email)
        if user is None:
            raise InvalidCode(INVALID_CODE, {"code": "invalid"})
        outcome = await self.codes.check(
            purpose, user.user_id, self.vault.code_digest(purpose, user.user_id, code)
        )
        if outcome is not CodeCheck.OK:
            detail = "expired" if outcome is CodeCheck.MISSING else "invalid"
            raise InvalidCode(INVALID_CODE, {"code": detail})
        return user.user_id

    async def verify_email(self, email: str, code: str) -> dict[str, Any]:
        user_id = await self._check(accounts.VERIFY, email, code)
        await self.users.mark_email_verified(user_id)
        self.gate.forget(user_id)
        return {"email_verified": True}

    async def request_password_reset(self, email: str) -> None:
        user = await self.users.find_user_by_email(email)
        if user is None:
            return
        if await self.codes.may_send(accounts.RESET, user.user_id):
            await self._send_code(accounts.RESET, user.user_id, email)

    async def confirm_password_reset(self, email: str, code: str, new_password: str) -> None:
        user_id = await self._check(accounts.RESET, email, code)
        password_hash = await asyncio.to_thread(hash_password, new_password)
        await self.users.reset_password(user_id, password_hash)
        await self.codes.discard(accounts.RESET, user_id)
        self.gate.forget(user_id)

    async def me(self, principal: Principal) -> dict[str, Any]:
        user = await self.users.find_user_by_id(principal.user_id)
        if user is None:
            raise Unauthorized("account no longer exists")
        post, comment = await self.karma.get(user.user_id)
        return {
            "user_id": user.user_id,
            "username": user.username,
            "email": await self.users.email_of(user.user_id),
            "email_verified": user.email_verified,
            "karma": {"post": post, "comment": comment, "total": post + comment},
            "created_at": user.created_at,
        }

    async def delete(self, principal: Principal, password: str) -> None:
        user = await self.users.find_user_by_id(principal.user_id)
        ok = await asyncio.to_thread(
            verify_password, user.password_hash if user else None, password
        )
        if not ok or user is None:
            raise Unauthorized("wrong password", {"password": "wrong"})
        event = new_event(
            UserDeleted(user_id=user.user_id, deleted_at=datetime.now(UTC)), key=user.user_id
        )
        await self.users.delete_account(user.user_id, user.username, event)
        await self.codes.discard(accounts.VERIFY, user.user_id)
        await self.codes.discard(accounts.RESET, user.user_id)
        self.gate.forget(user.user_id)
