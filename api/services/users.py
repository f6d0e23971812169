"""Public profiles: name, join date and karma (never the email)."""

from __future__ import annotations

from typing import Any

from domain.errors import NotFound
from stores.identity import IdentityStore
from stores.karma import KarmaStore


class UserService:
    def __init__(self, identity: IdentityStore, karma: KarmaStore) -> None:
        self.identity = identity
        self.karma = karma

    async def profile(self, username: str) -> dict[str, Any]:
        user = await self.identity.find_user_by_name(username)
        if user is None:
            raise NotFound("user not found", {"username": username})
        post, comment = await self.karma.get(user.user_id)
        return {
            "username": user.username,
            "karma": {"post": post, "comment": comment, "total": post + comment},
            "created_at": user.created_at,
        }
