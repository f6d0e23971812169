"""Posts: accepted onto the log (202), materialised into shards by the content dataflow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.commands import CreatePost
from api.security import Principal
from domain.errors import Forbidden
from domain.ids import new_post_id
from schemas.envelope import new_event
from schemas.events import PostCreated
from stores.communities import CommunityStore
from stores.kafka import DeliveryPending, EventPublisher
from stores.post_views import listing_item, post_view
from stores.posts import PostStore
from stores.redis_store import LiveVotes


class PostService:
    def __init__(
        self,
        communities: CommunityStore,
        posts: PostStore,
        publisher: EventPublisher,
        live: LiveVotes,
    ) -> None:
        self.communities = communities
        self.posts = posts
        self.publisher = publisher
        self.live = live

    async def create(self, principal: Principal, community_name: str, cmd: CreatePost) -> dict:
        community = await self.communities.get_community(community_name)
        if community.visibility != "public" and not await self.communities.is_member(
            community.community_id, principal.user_id
        ):
            raise Forbidden("only members may post here", {"community": community.name})
        payload = PostCreated(
            post_id=new_post_id(community.community_id),
            community_id=community.community_id,
            community_name=community.name,
            author_id=principal.user_id,
            author_name=principal.username,
            title=cmd.title,
            kind=cmd.kind,
            body=cmd.body,
            url=cmd.url,
            media_id=cmd.media_id,
            created_at=datetime.now(UTC),
        )
        view = post_view(payload)
        try:
            await self.publisher.publish(new_event(payload, key=community.community_id))
        except DeliveryPending as pending:
            pending.answer = view
            raise
        return view

    async def get(self, post_id: str, principal: Principal | None) -> dict[str, Any]:
        row = await self.posts.get(post_id)
        votes = await self._my_votes(principal, [row])
        return post_view(row, votes.get(row["post_id"]) if principal else None)

    async def list_community(
        self,
        community_name: str,
        principal: Principal | None,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        community = await self.communities.get_community(community_name)
        rows, next_cursor = await self.posts.list_new(community.community_id, limit, cursor)
        votes = await self._my_votes(principal, rows)
        items = [listing_item(r, votes.get(r["post_id"]) if principal else None) for r in rows]
        return {"items": items, "next_cursor": next_cursor}

    async def _my_votes(
        self, principal: Principal | None, rows: list[dict[str, Any]]
    ) -> dict[str, int]:
        if principal is None:
            return {}
        return await self.live.directions(principal.user_id, [r["post_id"] for r in rows])
