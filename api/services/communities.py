"""Communities and memberships (identity database, outbox-published)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.commands import CreateCommunity
from api.security import Principal
from domain.ids import new_id
from schemas.envelope import Envelope, new_event
from schemas.events import CommunityCreated, MembershipChanged
from stores.communities import CommunityRow, CommunityStore


def community_view(row: CommunityRow) -> dict[str, Any]:
    return {
        "community_id": row.community_id,
        "name": row.name,
        "description": row.description,
        "visibility": row.visibility,
        "member_count": row.member_count,
        "created_at": row.created_at,
    }


class CommunityService:
    def __init__(self, communities: CommunityStore) -> None:
        self.communities = communities

    async def create(self, principal: Principal, cmd: CreateCommunity) -> dict[str, Any]:
        row = CommunityRow(
            community_id=new_id(),
            name=cmd.name,
            description=cmd.description,
            visibility=cmd.visibility,
            creator_id=principal.user_id,
            member_count=1,
            created_at=datetime.now(UTC),
        )
        event = new_event(
            CommunityCreated(
                community_id=row.community_id,
                name=row.name,
                description=row.description,
                visibility=cmd.visibility,
                creator_id=row.creator_id,
                created_at=row.created_at,
            ),
            key=row.community_id,
        )
        await self.communities.create_community(row, event)
        return community_view(row)

    async def get(self, name: str) -> dict[str, Any]:
        return community_view(await self.communities.get_community(name))

    async def autocomplete(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        return [community_view(r) for r in await self.communities.search_communities(prefix, limit)]

    async def set_membership(self, principal: Principal, name: str, join: bool) -> dict[str, Any]:
        community = await self.communities.get_community(name)

        def event(count: int) -> Envelope:
            return new_event(
                MembershipChanged(
                    community_id=community.community_id,
                    user_id=principal.user_id,
                    joined=join,
                    member_count=count,
                ),
                key=community.community_id,
            )

        count = await self.communities.change_membership(
            community.community_id, principal.user_id, join, event
        )
        return {"member_count": count}
