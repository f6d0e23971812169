"""Public profiles: name, join date and karma (never the email); a user's comments."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from api.services.comments import comment_view
from domain.errors import NotFound, ValidationFailed
from stores.comments import CommentStore
from stores.karma import KarmaStore
from stores.posts import decode_cursor, encode_cursor
from stores.users import UserRow, UserStore


class UserService:
    def __init__(self, users: UserStore, karma: KarmaStore, comments: CommentStore) -> None:
        self.users = users
        self.karma = karma
        self.comments = comments

    async def _user(self, username: str) -> UserRow:
        user = await self.users.find_user_by_name(username)
        if user is None:
            raise NotFound("user not found", {"username": username})
        return user

    async def profile(self, username: str) -> dict[str, Any]:
        user = await self._user(username)
        post, comment = await self.karma.get(user.user_id)
        return {
            "username": user.username,
            "karma": {"post": post, "comment": comment, "total": post + comment},
            "created_at": user.created_at,
        }

    async def comment_history(
        self, username: str, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """The user's comments, newest first (deleted ones leave the list)."""
        before = None
        if cursor:
            (before,) = decode_cursor(cursor, 1)
            if not isinstance(before, str):
                raise ValidationFailed("cursor is not valid", {"cursor": "malformed"})
        user = await self._user(username)
        rows = await self.comments.by_author(user.user_id, limit + 1, before)
        items = [
            {"post_id": post_id, **comment_view(replace(c, author=user.username))}
            for post_id, c in rows[:limit]
        ]
        for item in items:  # a flat list: no tree fields
            del item["children"], item["more_children"], item["parent_id"]
        next_cursor = encode_cursor([rows[limit - 1][1].comment_id]) if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}
