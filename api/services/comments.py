"""Comments: a child slot is taken in CQL (compare-and-set), then the comment is accepted
onto the log (202) and materialised into CQL by the content dataflow. Edits and deletes
are log events too. Reads assemble the tree from one partition."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from api.commands import CreateComment, EditComment
from api.security import Principal
from api.services.access import Access
from api.services.prepublish import PrePublishChecks
from domain.access import Locked, check_contribute
from domain.comments import DELETED, Comment, Thread, arrange, check_can_reply, child_path
from domain.errors import Archived, Forbidden, NotFound, ValidationFailed
from domain.ids import community_of_post, new_comment_id, post_of_comment
from domain.lifecycle import is_archived
from domain.masks import REMOVED
from schemas.envelope import new_event
from schemas.events import CommentCreated, CommentDeleted, CommentEdited
from stores import moderation
from stores.comments import CommentRef, CommentStore
from stores.kafka import DeliveryPending, EventPublisher
from stores.posts import decode_cursor, encode_cursor
from stores.redis_store import LiveVotes

MAX_LEVELS = 10


def comment_view(
    c: Comment,
    children: list[dict[str, Any]] | None = None,
    more_children: int = 0,
    my_vote: int | None = None,
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "comment_id": c.comment_id,
        "parent_id": c.parent_id,
        "path": c.path,
        "depth": c.depth,
        "author": c.author,
        "body": c.body,
        "score": c.score,
        "upvotes": c.upvotes,
        "downvotes": c.downvotes,
        "deleted": c.deleted,
        "removed": c.removed,
        "created_at": c.created_at,
        "edited_at": c.edited_at,
        "children": children or [],
        "more_children": more_children,
    }
    if my_vote is not None:
        view["my_vote"] = my_vote
    if c.shadow_banned:
        view["shadow_banned"] = True
    return view


def thread_view(t: Thread, votes: dict[str, int] | None) -> dict[str, Any]:
    children = [thread_view(child, votes) for child in t.children]
    my_vote = votes.get(t.comment.comment_id, 0) if votes is not None else None
    return comment_view(t.comment, children, t.more_children, my_vote)


def _shown_ids(threads: list[Thread]) -> list[str]:
    ids: list[str] = []
    stack = list(threads)
    while stack:
        t = stack.pop()
        ids.append(t.comment.comment_id)
        stack.extend(t.children)
    return ids


class CommentService:
    def __init__(
        self,
        access: Access,
        readable_post: Callable[[str, Principal | None], Awaitable[dict[str, Any]]],
        comments: CommentStore,
        publisher: EventPublisher,
        live: LiveVotes,
        archive_days: int,
        checks: PrePublishChecks | None = None,
    ) -> None:
        self.checks = checks
        self.access = access
        self.readable_post = readable_post
        self.comments = comments
        self.publisher = publisher
        self.live = live
        self.archive_after = timedelta(days=archive_days)

    async def ping(self) -> None:
        await self.comments.ping()

    async def create(
        self, principal: Principal, post_id: str, cmd: CreateComment
    ) -> dict[str, Any]:
        post = await self.readable_post(post_id, principal)
        if is_archived(post_id, self.archive_after):
            raise Archived("comments are closed on archived posts", {"post_id": post_id})
        community = await self.access.community(post["community_id"])
        standing = await self.access.standing(community.community_id, principal)
        check_contribute(community.visibility, standing, {"community": community.name})
        if post["locked"] or await moderation.is_locked(self.access.communities.pool, post_id):
            raise Locked("this post is locked", {"post_id": post_id})
        parent_path, notify = "", post["author_id"]
        if cmd.parent_id is not None:
            parent = await self._find(cmd.parent_id, field="parent_id")
            if parent.post_id != post_id:
                raise ValidationFailed(
                    "the parent comment belongs to another post", {"parent_id": cmd.parent_id}
                )
            parent_path, notify = parent.path, None if parent.deleted else parent.author_id
            if (
                parent.author_id
                and parent.author_id != principal.user_id
                and not standing.moderator
                and await moderation.is_shadow_banned(
                    self.access.communities.pool, community.community_id, parent.author_id
                )
            ):
                raise NotFound("comment not found", {"parent_id": cmd.parent_id})
        check_can_reply(parent_path)
        if self.checks is None:
            return await self._create(principal, post_id, post, cmd, parent_path, notify)
        async with self.checks.publishing(principal, "comment", cmd.body):
            return await self._create(principal, post_id, post, cmd, parent_path, notify)

    async def _create(
        self,
        principal: Principal,
        post_id: str,
        post: dict[str, Any],
        cmd: CreateComment,
        parent_path: str,
        notify: str | None,
    ) -> dict[str, Any]:
        path = child_path(parent_path, await self.comments.allocate_slot(post_id, parent_path))
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # CQL keeps milliseconds
        payload = CommentCreated(
            comment_id=new_comment_id(post_id),
            post_id=post_id,
            community_id=post["community_id"],
            parent_id=cmd.parent_id,
            path=path,
            author_id=principal.user_id,
            author_name=principal.username,
            body=cmd.body,
            parent_author_id=notify,
            created_at=now,
        )
        comment = Comment(
            payload.comment_id,
            payload.parent_id,
            path,
            principal.username,
            payload.body,
            False,
            payload.created_at,
        )
        view = {"post_id": post_id, **comment_view(comment)}
        try:
            await self.publisher.publish(new_event(payload, key=post_id))
        except DeliveryPending as pending:
            pending.answer = view
            raise
        return view

    async def edit(self, principal: Principal, comment_id: str, cmd: EditComment) -> dict[str, Any]:
        ref = await self._own(principal, comment_id)
        payload = CommentEdited(
            comment_id=comment_id,
            post_id=ref.post_id,
            community_id=community_of_post(ref.post_id),
            path=ref.path,
            author_id=principal.user_id,
            author_name=principal.username,
            body=cmd.body,
            edited_at=datetime.now(UTC),
        )
        await self.publisher.publish(new_event(payload, key=ref.post_id))
        return {
            "comment_id": comment_id,
            "post_id": ref.post_id,
            "path": ref.path,
            "body": cmd.body,
            "edited_at": payload.edited_at,
        }

    async def delete(self, principal: Principal, comment_id: str) -> dict[str, Any]:
        ref = await self._own(principal, comment_id)
        payload = CommentDeleted(
            comment_id=comment_id,
            post_id=ref.post_id,
            community_id=community_of_post(ref.post_id),
            path=ref.path,
            author_id=principal.user_id,
            deleted_at=datetime.now(UTC),
        )
        await self.publisher.publish(new_event(payload, key=ref.post_id))
        return {
            "comment_id": comment_id,
            "post_id": ref.post_id,
            "path": ref.path,
            "author": DELETED,
            "body": DELETED,
            "deleted": True,
        }

    async def tree(
        self,
        post_id: str,
        principal: Principal | None,
        *,
        sort: str,
        levels: int,
        limit: int,
        cursor: str | None,
        parent_id: str | None,
    ) -> dict[str, Any]:
        """Replies of the post (or of `parent_id`: a subtree on demand), `levels` deep."""
        community_of_post(post_id)  # NotFound for a malformed id, before any read
        if not 1 <= levels <= MAX_LEVELS:
            raise ValidationFailed(f"depth must be 1..{MAX_LEVELS}", {"depth": levels})
        offset = 0
        if cursor:
            (offset,) = decode_cursor(cursor, 1)
            if not isinstance(offset, int) or offset < 0:
                raise ValidationFailed("cursor is not valid", {"cursor": "malformed"})
        under = ""
        if parent_id is not None:
            parent = await self._find(parent_id, field="parent_id")
            if parent.post_id != post_id:
                raise NotFound("comment not found", {"parent_id": parent_id})
            under = parent.path
        post, comments = await asyncio.gather(
            self.readable_post(post_id, principal), self.comments.thread(post_id, under)
        )
        comments = await self._shown(post, comments, principal)
        threads, left = arrange(comments, sort, levels, limit, under=under, offset=offset)
        votes = None
        if principal is not None:
            votes = await self.live.directions(principal.user_id, _shown_ids(threads))
        return {
            "items": [thread_view(t, votes) for t in threads],
            "next_cursor": encode_cursor([offset + len(threads)]) if left else None,
            "more_children": left,
        }

    async def _shown(
        self, post: dict[str, Any], comments: list[Comment], principal: Principal | None
    ) -> list[Comment]:
        """The comments as this reader sees them: removed ones `[removed]` (but to their
        author and moderators), those of shadow-banned authors left out (with their
        replies) for everyone but the author and moderators."""
        removed = {c.comment_id for c in comments if c.removed}
        authors = {c.author_id for c in comments}
        pool = self.access.communities.pool
        community_id = post["community_id"]
        hidden_authors = (
            await moderation.shadow_banned_in(pool, [(community_id, a) for a in sorted(authors)])
            if authors
            else set()
        )
        if not removed and not hidden_authors:
            return comments
        viewer = principal.user_id if principal else None
        moderator = False
        if principal is not None:
            moderator = (await self.access.standing(community_id, principal)).moderator
        if moderator:
            return [
                replace(c, shadow_banned=True)
                if (community_id, c.author_id) in hidden_authors
                else c
                for c in comments
            ]
        out: list[Comment] = []
        dropped: list[str] = []
        for c in comments:  # in path order: a parent comes before its replies
            if any(c.path.startswith(d + ".") for d in dropped):
                continue
            if (community_id, c.author_id) in hidden_authors and c.author_id != viewer:
                dropped.append(c.path)
                continue
            if c.removed and c.author_id != viewer and not c.deleted:
                c = replace(c, body=REMOVED, author=REMOVED)
            out.append(c)
        return out

    async def _find(self, comment_id: str, field: str = "comment_id") -> CommentRef:
        try:
            post_id = post_of_comment(comment_id)
        except NotFound:
            raise NotFound("comment not found", {field: comment_id}) from None
        ref = await self.comments.find(post_id, comment_id)
        if ref is None:
            raise NotFound("comment not found", {field: comment_id})
        return ref

    async def _own(self, principal: Principal, comment_id: str) -> CommentRef:
        ref = await self._find(comment_id)
        if ref.deleted:
            raise NotFound("comment was deleted", {"comment_id": comment_id})
        if ref.author_id != principal.user_id:
            raise Forbidden("only the author may change a comment", {"comment_id": comment_id})
        return ref
