"""Posts: accepted onto the log (202), materialised into shards by the content dataflow.
Edits and deletes are log events too; saved posts live in the identity database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api.commands import CreatePost, EditPost
from api.security import Principal
from api.services.access import Access
from api.services.media import MediaService
from api.services.prepublish import PrePublishChecks
from domain.access import check_contribute
from domain.errors import Forbidden, NotFound, ValidationFailed
from domain.ids import community_of_post, new_post_id
from domain.masks import show_post
from schemas.envelope import new_event
from schemas.events import PostCreated, PostDeleted, PostEdited
from stores import moderation, shadow
from stores.kafka import DeliveryPending, EventPublisher
from stores.post_views import listing_item, post_view
from stores.posts import PostStore, decode_cursor, encode_cursor
from stores.redis_store import LiveVotes
from stores.saved_posts import SavedPosts

TITLE_EDIT_WINDOW = timedelta(minutes=5)  # as Reddit: the title is fixed after that


class PostService:
    def __init__(
        self,
        access: Access,
        posts: PostStore,
        publisher: EventPublisher,
        live: LiveVotes,
        saved: SavedPosts,
        media: MediaService,
        checks: PrePublishChecks | None = None,
    ) -> None:
        self.media = media
        self.access = access
        self.posts = posts
        self.publisher = publisher
        self.live = live
        self.saved = saved
        self.checks = checks

    async def create(self, principal: Principal, community_name: str, cmd: CreatePost) -> dict:
        community = await self.access.community_named(community_name)
        standing = await self.access.standing(community.community_id, principal)
        check_contribute(community.visibility, standing, {"community": community.name})
        media_key = thumbnail_key = None
        if cmd.kind == "media" and cmd.media_id is not None:
            upload = await self.media.usable(principal, cmd.media_id)
            media_key, thumbnail_key = upload.original_key, upload.thumbnail_key
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
            media_id=cmd.media_id if cmd.kind == "media" else None,
            created_at=datetime.now(UTC),
            media_key=media_key,
            thumbnail_key=thumbnail_key,
        )
        view = post_view(payload)
        if self.checks is None:
            await self._publish(payload, view)
        else:
            async with self.checks.publishing(principal, "post", cmd.title, cmd.body, cmd.url):
                await self._publish(payload, view)
        return view

    async def _publish(self, payload: PostCreated, view: dict[str, Any]) -> None:
        try:
            await self.publisher.publish(new_event(payload, key=payload.community_id))
        except DeliveryPending as pending:
            pending.answer = view
            raise

    async def readable(self, post_id: str, principal: Principal | None) -> dict[str, Any]:
        """The post's row if the reader may see it (its community's visibility, a
        shadow-banned author); NotFound otherwise. Adds `privileged` (author or
        moderator)."""
        community = await self.access.community(community_of_post(post_id))
        standing = await self.access.readable(community, principal, "post", post_id)
        row = await self.posts.get(post_id)
        viewer = principal.user_id if principal else None
        privileged = row["author_id"] == viewer
        hidden = bool(row["removed"]) or await moderation.is_shadow_banned(
            self.access.communities.pool, community.community_id, row["author_id"]
        )
        if hidden and not privileged and principal is not None:
            if standing is None:
                standing = await self.access.standing(community.community_id, principal)
            privileged = standing.moderator
        if hidden and not privileged and not row["removed"]:
            raise NotFound("post not found", {"post_id": post_id})  # shadow-banned author
        row["privileged"] = privileged
        row["shadow_banned"] = hidden and not row["removed"]
        return row

    async def get(self, post_id: str, principal: Principal | None) -> dict[str, Any]:
        row = await self.readable(post_id, principal)
        votes = await self._my_votes(principal, [row])
        view = post_view(row, votes.get(row["post_id"]) if principal else None)
        if not (row["privileged"] and row["author_id"] != (principal and principal.user_id)):
            view["comment_count"] -= await shadow.hidden_comment_count(
                self.live.client,
                row["community_id"],
                post_id,
                principal.user_id if principal else "",
            )
        if row["shadow_banned"] and principal and principal.user_id != row["author_id"]:
            view["shadow_banned"] = True  # what moderators see
        return show_post(
            view,
            deleted=row["deleted_at"] is not None,
            removed=bool(row["removed"]),
            privileged=bool(row["privileged"]),
        )

    async def _own(self, principal: Principal, post_id: str) -> dict[str, Any]:
        row = await self.readable(post_id, principal)
        if row["deleted_at"] is not None:
            raise NotFound("post was deleted", {"post_id": post_id})
        if row["author_id"] != principal.user_id:
            raise Forbidden("only the author may change a post", {"post_id": post_id})
        return row

    async def edit(self, principal: Principal, post_id: str, cmd: EditPost) -> dict[str, Any]:
        row = await self._own(principal, post_id)
        now = datetime.now(UTC)
        if cmd.title is not None and now - row["created_at"] > TITLE_EDIT_WINDOW:
            raise ValidationFailed(
                "the title can only be changed within 5 minutes of posting",
                {"title": "edit window closed"},
            )
        if cmd.url is not None and row["kind"] != "link":
            raise ValidationFailed("only a link post has a url", {"url": "not a link post"})
        if cmd.body is not None and row["kind"] == "link":
            raise ValidationFailed("a link post has no body", {"body": "link post"})
        payload = PostEdited(
            post_id=post_id,
            community_id=row["community_id"],
            author_id=principal.user_id,
            title=cmd.title,
            body=cmd.body,
            url=cmd.url,
            edited_at=now,
        )
        await self.publisher.publish(new_event(payload, key=row["community_id"]))
        changed = {k: v for k, v in cmd.model_dump().items() if v is not None}
        return {"post_id": post_id, **changed, "edited_at": now}

    async def delete(self, principal: Principal, post_id: str) -> dict[str, Any]:
        row = await self._own(principal, post_id)
        payload = PostDeleted(
            post_id=post_id,
            community_id=row["community_id"],
            author_id=principal.user_id,
            deleted_at=datetime.now(UTC),
        )
        await self.publisher.publish(new_event(payload, key=row["community_id"]))
        return {"post_id": post_id, "deleted": True}

    async def save(self, principal: Principal, post_id: str, saved: bool) -> None:
        if saved:
            await self.readable(post_id, principal)
            await self.saved.save(principal.user_id, post_id)
        else:
            await self.saved.unsave(principal.user_id, post_id)

    async def saved_posts(
        self, principal: Principal, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        before = _time_keyset(cursor)
        saved = await self.saved.page(principal.user_id, limit, before)
        rows = await self.posts.by_ids([post_id for post_id, _ in saved])
        present = [rows[p] for p, _ in saved if p in rows]
        shown = await self.access.visible(present, principal)
        visible = {r["post_id"] for r, ok in zip(present, shown, strict=True) if ok}
        votes = await self._my_votes(principal, [rows[p] for p in visible])
        items = [
            _listed(rows[p], votes.get(p), principal) | {"saved_at": at}
            for p, at in saved
            if p in visible
        ]
        next_cursor = encode_cursor(list(saved[-1][::-1])) if len(saved) >= limit else None
        return {"items": items, "next_cursor": next_cursor}

    async def by_author(
        self, author_id: str, principal: Principal | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """The author's posts the reader may see, newest first."""
        before = _time_keyset(cursor)
        rows = await self.posts.by_author(author_id, limit, before)
        shown = await self.access.visible(rows, principal)
        visible = [r for r, ok in zip(rows, shown, strict=True) if ok]
        votes = await self._my_votes(principal, visible)
        items = [_listed(r, votes.get(r["post_id"]), principal) for r in visible]
        last = rows[-1] if len(rows) >= limit else None
        next_cursor = encode_cursor([last["created_at"], last["post_id"]]) if last else None
        return {"items": items, "next_cursor": next_cursor}

    async def _my_votes(
        self, principal: Principal | None, rows: list[dict[str, Any]]
    ) -> dict[str, int]:
        if principal is None:
            return {}
        return await self.live.directions(principal.user_id, [r["post_id"] for r in rows])


def _listed(row: dict[str, Any], my_vote: int | None, principal: Principal | None) -> dict:
    item = listing_item(row, my_vote if principal else None)
    privileged = principal is not None and principal.user_id == row["author_id"]
    return show_post(item, deleted=False, removed=bool(row["removed"]), privileged=privileged) | (
        {"removed": True} if row["removed"] else {}
    )


def _time_keyset(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    at, key = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(str(at)), str(key)
    except ValueError:
        raise ValidationFailed("cursor is not valid", {"cursor": "malformed"}) from None
