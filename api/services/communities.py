"""Communities, memberships, join requests, approved users and moderators (identity
database, outbox-published)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.commands import CreateCommunity, UpdateCommunity
from api.security import Principal
from api.services.access import Access
from domain.access import check_moderator, check_owner
from domain.errors import NotFound
from domain.ids import new_id
from schemas.envelope import Envelope, new_event
from schemas.events import CommunityCreated, CommunityUpdated, MembershipChanged
from stores.communities import CommunityRow, CommunityStore
from stores.users import UserRow, UserStore

MAX_LISTED = 100


def community_view(row: CommunityRow) -> dict[str, Any]:
    return {
        "community_id": row.community_id,
        "name": row.name,
        "description": row.description,
        "rules": row.rules,
        "visibility": row.visibility,
        "member_count": row.member_count,
        "created_at": row.created_at,
    }


class CommunityService:
    def __init__(self, communities: CommunityStore, users: UserStore, access: Access) -> None:
        self.communities = communities
        self.users = users
        self.access = access

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

    async def autocomplete(
        self, prefix: str, limit: int, principal: Principal | None
    ) -> list[dict[str, Any]]:
        user_id = principal.user_id if principal else ""
        rows = await self.communities.search_communities(prefix, limit, user_id)
        return [community_view(r) for r in rows]

    async def update(self, principal: Principal, name: str, cmd: UpdateCommunity) -> dict[str, Any]:
        community = await self.communities.get_community(name)
        standing = await self.access.standing(community.community_id, principal)
        check_moderator(community.visibility, standing, {"community": community.name})

        def event(row: CommunityRow) -> Envelope:
            return new_event(
                CommunityUpdated(
                    community_id=row.community_id,
                    name=row.name,
                    description=row.description,
                    rules=row.rules,
                    visibility=row.visibility,  # type: ignore[arg-type]
                    actor_id=principal.user_id,
                    updated_at=datetime.now(UTC),
                ),
                key=row.community_id,
            )

        row = await self.communities.update_community(
            community.community_id, cmd.description, cmd.rules, cmd.visibility, event
        )
        self.access.forget(row)
        return community_view(row)

    def _membership_event(self, community_id: str, user_id: str, join: bool) -> Any:
        def event(count: int) -> Envelope:
            return new_event(
                MembershipChanged(
                    community_id=community_id, user_id=user_id, joined=join, member_count=count
                ),
                key=community_id,
            )

        return event

    async def set_membership(
        self, principal: Principal, name: str, join: bool
    ) -> tuple[int, dict[str, Any]]:
        """(status, body): joining a private community is a request (202 pending)."""
        community = await self.communities.get_community(name)
        if join and community.visibility == "private":
            asked = await self.access.standing_changed(
                community.community_id,
                principal.user_id,
                self.communities.request_to_join(community.community_id, principal.user_id),
            )
            if asked:
                return 202, {"status": "pending"}
            return 200, {"member_count": community.member_count, "status": "member"}
        count = await self.access.standing_changed(
            community.community_id,
            principal.user_id,
            self.communities.change_membership(
                community.community_id,
                principal.user_id,
                join,
                self._membership_event(community.community_id, principal.user_id, join),
            ),
        )
        return 200, {"member_count": count}

    async def _moderated(self, principal: Principal, name: str) -> CommunityRow:
        community = await self.communities.get_community(name)
        standing = await self.access.standing(community.community_id, principal)
        check_moderator(community.visibility, standing, {"community": community.name})
        return community

    async def _user(self, username: str) -> UserRow:
        user = await self.users.find_user_by_name(username)
        if user is None:
            raise NotFound("user not found", {"username": username})
        return user

    async def join_requests(self, principal: Principal, name: str) -> dict[str, Any]:
        community = await self._moderated(principal, name)
        items = await self.communities.join_requests(community.community_id, MAX_LISTED)
        return {"items": items, "next_cursor": None}

    async def answer_join_request(
        self, principal: Principal, name: str, username: str, approve: bool
    ) -> dict[str, Any]:
        community = await self._moderated(principal, name)
        user = await self._user(username)
        count = await self.access.standing_changed(
            community.community_id,
            user.user_id,
            self.communities.answer_join_request(
                community.community_id,
                user.user_id,
                approve,
                self._membership_event(community.community_id, user.user_id, True),
            ),
        )
        return {"username": user.username, "approved": approve, "member_count": count}

    async def approve_user(self, principal: Principal, name: str, username: str) -> dict[str, Any]:
        community = await self._moderated(principal, name)
        user = await self._user(username)
        await self.access.standing_changed(
            community.community_id,
            user.user_id,
            self.communities.approve_user(community.community_id, user.user_id, principal.user_id),
        )
        return {"username": user.username, "approved": True}

    async def moderators(self, principal: Principal | None, name: str) -> dict[str, Any]:
        community = await self.communities.get_community(name)
        await self.access.readable(community, principal, "community", name)
        items = await self.communities.moderators(community.community_id)
        return {"items": items, "next_cursor": None}

    async def set_moderator(
        self, principal: Principal, name: str, username: str, moderator: bool
    ) -> dict[str, Any]:
        community = await self.communities.get_community(name)
        standing = await self.access.standing(community.community_id, principal)
        check_owner(community.visibility, standing, {"community": community.name})
        user = await self._user(username)
        await self.access.standing_changed(
            community.community_id,
            user.user_id,
            self.communities.set_moderator(
                community.community_id,
                user.user_id,
                moderator,
                self._membership_event(community.community_id, user.user_id, True),
            ),
        )
        return {"username": user.username, "role": "moderator" if moderator else "member"}
