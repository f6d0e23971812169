"""Public profiles: name, join date and karma (never the email); a user's posts and
comments (only what the reader may see)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from api.security import Principal
from api.services.access import Access
from api.services.comments import comment_view
from api.services.posts import PostService
from domain.errors import NotFound, ValidationFailed
from domain.ids import community_of_post
from stores.comments import CommentStore
from stores.karma import KarmaStore
from stores.posts import decode_cursor, encode_cursor
from stores.users import UserRow, UserStore


class UserService:
    def __init__(
        self,
        users: UserStore,
        karma: KarmaStore,
        comments: CommentStore,
        access: Access,
        posts: PostService,
    ) -> None:
        self.users = users
        self.karma = karma
        self.comments = comments
        self.access = access
        self.posts = posts

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

    async def post_history(
        self, username: str, principal: Principal | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        user = await self._user(username)
        return await self.posts.by_author(user.user_id, principal, limit, cursor)

    async def comment_history(
        self, username: str, principal: Principal | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """The user's comments the reader may see, newest first (deleted ones leave the
        list; removed ones and private communities' only for those who may see them)."""
        before = None
        if cursor:
            (before,) = decode_cursor(cursor, 1)
            if not isinstance(before, str):
                raise ValidationFailed("cursor is not valid", {"cursor": "malformed"})
        user = await self._user(username)
        rows = await self.comments.by_author(user.user_id, limit + 1, before)
        page = rows[:limit]
        removed = await self.comments.removed_among([(p, c.comment_id) for p, c in page])
        shown = await self.access.visible(
            [
                {
                    "community_id": community_of_post(post_id),
                    "author_id": user.user_id,
                    "removed": c.comment_id in removed,
                }
                for post_id, c in page
            ],
            principal,
        )
        items = [
            {"post_id": post_id, **comment_view(replace(c, author=user.username))}
            for (post_id, c), ok in zip(page, shown, strict=True)
            if ok
        ]
        for item in items:  # a flat list: no tree fields
            del item["children"], item["more_children"], item["parent_id"]
            item["removed"] = item["comment_id"] in removed
        next_cursor = encode_cursor([rows[limit - 1][1].comment_id]) if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}
