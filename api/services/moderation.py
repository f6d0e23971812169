"""Moderator actions (the community's creator is a moderator)."""

from __future__ import annotations

from typing import Any

from api.commands import PinPost
from api.security import Principal
from domain.errors import Forbidden, NotFound
from domain.ids import community_of_post
from schemas.envelope import Envelope, new_event
from schemas.events import PostPinned
from stores.communities import CommunityStore
from stores.posts import PostStore

MAX_PINS = 2


class ModerationService:
    def __init__(self, communities: CommunityStore, posts: PostStore) -> None:
        self.communities = communities
        self.posts = posts

    async def pin(self, principal: Principal, name: str, cmd: PinPost) -> dict[str, Any]:
        community = await self.communities.get_community(name)
        if not await self.communities.is_moderator(community.community_id, principal.user_id):
            raise Forbidden("moderators only", {"community": community.name})
        if community_of_post(cmd.post_id) != community.community_id:
            raise NotFound("post not found in this community", {"post_id": cmd.post_id})
        await self.posts.get(cmd.post_id)  # 404 unless materialised

        def event(pins: list[str]) -> Envelope:
            return new_event(
                PostPinned(
                    community_id=community.community_id,
                    post_id=cmd.post_id,
                    pinned=cmd.pinned,
                    pins=pins,
                    actor_id=principal.user_id,
                ),
                key=community.community_id,
            )

        pins = await self.communities.set_pin(
            community.community_id, cmd.post_id, principal.user_id, cmd.pinned, MAX_PINS, event
        )
        return {"pinned": pins}
