"""Moderator actions, reports and the moderation queue. Each action is one Postgres
transaction (its state, a mod log entry) that appends its event to the outbox; the
dataflows apply the events to the read models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from api.commands import (
    FileReport,
    FlairPost,
    LiftSanction,
    LockPost,
    ModerateContent,
    PinPost,
    Sanction,
    ShadowBan,
)
from api.security import Principal
from api.services.access import Access
from api.services.posts import PostService
from domain.access import check_moderator
from domain.errors import Forbidden, NotFound, ValidationFailed
from domain.ids import community_of_post, new_id, post_of_comment
from schemas.envelope import Envelope, new_event
from schemas.events import (
    ContentModerated,
    MemberSanctioned,
    PostFlaired,
    PostLocked,
    PostPinned,
    ReportFiled,
)
from stores import moderation
from stores.comments import CommentStore
from stores.communities import CommunityRow
from stores.moderation import LogEntry, QueueItem, SanctionKind
from stores.users import UserRow, UserStore

MAX_PINS = 2
SanctionAction = Literal["ban", "unban", "mute", "unmute", "shadow_ban", "unshadow_ban"]
SANCTION_OF: dict[str, SanctionKind] = {
    "ban": "ban",
    "unban": "ban",
    "mute": "mute",
    "unmute": "mute",
    "shadow_ban": "shadow_ban",
    "unshadow_ban": "shadow_ban",
}
MAX_LISTED = 100


class ModerationService:
    def __init__(
        self, access: Access, users: UserStore, posts: PostService, comments: CommentStore
    ) -> None:
        self.access = access
        self.users = users
        self.posts = posts
        self.comments = comments

    @property
    def pool(self) -> Any:
        return self.access.communities.pool

    async def _moderated(self, principal: Principal, name: str) -> CommunityRow:
        community = await self.access.community_named(name)
        standing = await self.access.standing(community.community_id, principal)
        check_moderator(community.visibility, standing, {"community": community.name})
        return community

    async def _user(self, username: str) -> UserRow:
        user = await self.users.find_user_by_name(username)
        if user is None:
            raise NotFound("user not found", {"username": username})
        return user

    async def _post_in(self, community: CommunityRow, post_id: str) -> dict[str, Any]:
        if community_of_post(post_id) != community.community_id:
            raise NotFound("post not found in this community", {"post_id": post_id})
        return await self.posts.posts.get(post_id)  # 404 unless materialised

    async def _target(self, target_id: str) -> tuple[Literal["post", "comment"], str, str, str]:
        """(type, community id, post id, author id) of a post or comment id."""
        try:
            community_id = community_of_post(target_id)
        except NotFound:
            post_id = post_of_comment(target_id)
            ref = await self.comments.find(post_id, target_id)
            if ref is None:
                raise NotFound("comment not found", {"target_id": target_id}) from None
            return "comment", community_of_post(post_id), post_id, ref.author_id or ""
        row = await self.posts.posts.get(target_id)
        return "post", community_id, target_id, row["author_id"]

    async def pin(self, principal: Principal, name: str, cmd: PinPost) -> dict[str, Any]:
        community = await self._moderated(principal, name)
        await self._post_in(community, cmd.post_id)

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

        pins = await self.access.communities.set_pin(
            community.community_id, cmd.post_id, principal.user_id, cmd.pinned, MAX_PINS, event
        )
        return {"pinned": pins}

    async def moderate(
        self,
        principal: Principal,
        name: str,
        cmd: ModerateContent,
        action: Literal["remove", "approve"],
    ) -> dict[str, Any]:
        community = await self._moderated(principal, name)
        try:
            kind, community_id, post_id, author_id = await self._target(cmd.target_id)
        except NotFound:
            raise NotFound("target not found", {"target_id": cmd.target_id}) from None
        if community_id != community.community_id:
            raise NotFound("target not found in this community", {"target_id": cmd.target_id})
        at = datetime.now(UTC)
        event = new_event(
            ContentModerated(
                community_id=community_id,
                target_id=cmd.target_id,
                target_type=kind,
                post_id=post_id,
                author_id=author_id,
                action=action,
                actor_id=principal.user_id,
                actor_name=principal.username,
                reason=cmd.reason,
                at=at,
            ),
            key=community_id,
        )
        entry = LogEntry(principal.user_id, principal.username, action, cmd.target_id, cmd.reason)
        await moderation.resolve(self.pool, community_id, cmd.target_id, action, entry, event)
        return {"target_id": cmd.target_id, "target_type": kind, "action": action}

    async def sanction(
        self,
        principal: Principal,
        name: str,
        username: str,
        kind: SanctionAction,
        hours: float,
        reason: str,
    ) -> dict[str, Any]:
        community = await self._moderated(principal, name)
        user = await self._user(username)
        if user.user_id == principal.user_id:
            raise ValidationFailed("moderators cannot sanction themselves", {"username": username})
        target_standing = await self.access.standing(community.community_id, _as(user))
        if target_standing.owner:
            raise Forbidden("owners cannot be sanctioned", {"username": username})
        at = datetime.now(UTC)
        until = at + timedelta(hours=hours) if hours > 0 else None
        lift = kind.startswith("un")
        base = SANCTION_OF[kind]
        event = new_event(
            MemberSanctioned(
                community_id=community.community_id,
                user_id=user.user_id,
                kind=kind,
                until=None if lift else until,
                actor_id=principal.user_id,
                actor_name=principal.username,
                reason=reason,
                at=at,
            ),
            key=community.community_id,
        )
        entry = LogEntry(principal.user_id, principal.username, kind, user.username, reason)
        await self.access.standing_changed(
            community.community_id,
            user.user_id,
            moderation.sanction(
                self.pool, community.community_id, user.user_id, base, until, lift, entry, event
            ),
        )
        return {"username": user.username, "action": kind, "until": None if lift else until}

    async def ban(self, principal: Principal, name: str, cmd: Sanction) -> dict:
        return await self.sanction(
            principal, name, cmd.username, "ban", cmd.duration_hours, cmd.reason
        )

    async def unban(self, principal: Principal, name: str, cmd: LiftSanction) -> dict:
        return await self.sanction(principal, name, cmd.username, "unban", 0, cmd.reason)

    async def mute(self, principal: Principal, name: str, cmd: Sanction) -> dict:
        return await self.sanction(
            principal, name, cmd.username, "mute", cmd.duration_hours, cmd.reason
        )

    async def shadow_ban(self, principal: Principal, name: str, cmd: ShadowBan) -> dict:
        kind: Literal["shadow_ban", "unshadow_ban"] = "unshadow_ban" if cmd.lift else "shadow_ban"
        return await self.sanction(principal, name, cmd.username, kind, 0, cmd.reason)

    async def lock(self, principal: Principal, name: str, cmd: LockPost) -> dict[str, Any]:
        community = await self._moderated(principal, name)
        await self._post_in(community, cmd.post_id)
        event = new_event(
            PostLocked(
                community_id=community.community_id,
                post_id=cmd.post_id,
                locked=cmd.locked,
                actor_id=principal.user_id,
                at=datetime.now(UTC),
            ),
            key=community.community_id,
        )
        action = "lock" if cmd.locked else "unlock"
        entry = LogEntry(principal.user_id, principal.username, action, cmd.post_id)
        await moderation.set_lock(
            self.pool, community.community_id, cmd.post_id, cmd.locked, entry, event
        )
        return {"post_id": cmd.post_id, "locked": cmd.locked}

    async def flair(self, principal: Principal, name: str, cmd: FlairPost) -> dict[str, Any]:
        community = await self._moderated(principal, name)
        await self._post_in(community, cmd.post_id)
        event = new_event(
            PostFlaired(
                community_id=community.community_id,
                post_id=cmd.post_id,
                flair=cmd.flair,
                actor_id=principal.user_id,
                at=datetime.now(UTC),
            ),
            key=community.community_id,
        )
        entry = LogEntry(
            principal.user_id, principal.username, "flair", cmd.post_id, cmd.flair or ""
        )
        await moderation.record(self.pool, community.community_id, entry, event)
        return {"post_id": cmd.post_id, "flair": cmd.flair}

    async def log(
        self, principal: Principal | None, name: str, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """Public for public communities, moderators only otherwise."""
        community = await self.access.community_named(name)
        if community.visibility != "public":
            standing = await self.access.standing(community.community_id, principal)
            check_moderator(community.visibility, standing, {"community": community.name})
        before = None
        if cursor:
            try:
                before = int(cursor)
            except ValueError:
                raise ValidationFailed("cursor is not valid", {"cursor": "malformed"}) from None
        rows = await moderation.log_entries(self.pool, community.community_id, limit, before)
        next_cursor = str(rows[-1]["id"]) if len(rows) >= limit else None
        for r in rows:
            del r["id"]
        return {"items": rows, "next_cursor": next_cursor}

    async def queue(self, principal: Principal, name: str) -> dict[str, Any]:
        community = await self._moderated(principal, name)
        items = await moderation.queue(self.pool, community.community_id, MAX_LISTED)
        return {"items": items, "next_cursor": None}

    async def report(self, principal: Principal, cmd: FileReport) -> dict[str, Any]:
        try:
            kind, community_id, post_id, _author = await self._target(cmd.target_id)
        except NotFound:
            raise NotFound("target not found", {"target_id": cmd.target_id}) from None
        await self.posts.readable(post_id, principal)  # 404 for what the user cannot see
        at = datetime.now(UTC)
        item = QueueItem(
            item_id=new_id(),
            community_id=community_id,
            target_id=cmd.target_id,
            target_type=kind,
            kind="report",
            source_id=principal.user_id,
            reason=cmd.reason,
        )
        event = new_event(
            ReportFiled(
                report_id=item.item_id,
                community_id=community_id,
                target_id=cmd.target_id,
                target_type=kind,
                reporter_id=principal.user_id,
                reason=cmd.reason,
                at=at,
            ),
            key=community_id,
        )
        await moderation.report(self.pool, item, event)
        return {"report_id": item.item_id, "target_id": cmd.target_id, "created_at": at}


def _as(user: UserRow) -> Principal:
    return Principal(user_id=user.user_id, username=user.username)
