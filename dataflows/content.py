"""content: posts topic -> post rows in the community's shard, then the target marker in
Redis that lets the API accept votes on it; comments topic -> comment rows in CQL
(partition = post, clustering = materialised path), their vote markers, and each
post's comment count in its shard; users topic -> a deleted account's name erased
from every post, comment and stored view it wrote.

Every name written goes through `dataflows.accounts.DeletedAccounts` first, so a
replay of the whole log after a deletion writes `[deleted]`, never the name.

The count is kept per post in the dataflow's state (recovered with its offsets, so
exact) and written as an absolute value that never goes down. Like vote tallies it is
evicted once the post is archived (the API refuses comments then) and idle.

`python -m dataflows run content`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg
import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink
from cassandra.cluster import Cluster, Session
from redis import Redis

from dataflows.accounts import DELETED_NAME, DeletedAccounts, is_user_deleted
from dataflows.common import Event, SourceItem, events
from dataflows.guard import Guard, Traced
from dataflows.sinks import ShardConnections
from domain.lifecycle import evictable_at
from schemas.events import (
    CommentCreated,
    CommentDeleted,
    CommentEdited,
    ContentModerated,
    DeadLetter,
    MemberSanctioned,
    PostCreated,
    PostDeleted,
    PostEdited,
    PostFlaired,
    PostLocked,
    UserDeleted,
)
from schemas.topics import COMMENTS, MODERATION, POSTS, USERS
from stores import cql, post_views, shadow
from stores.comments import COMMENT_TABLES, micros
from stores.comments import CommentWriter as CommentRows
from stores.posts import (
    erase_author,
    fetch_posts,
    truncate_comment_counts,
    truncate_post_states,
    truncate_posts,
    upsert_comment_counts,
    upsert_post_states,
    upsert_posts,
)
from stores.redis_store import (
    PipelinedScript,
    clear_target_markers,
    mark_target,
    sync_client,
    target_key,
)
from stores.settings import Settings

NAME = "content"
TOPICS = [POSTS.name, COMMENTS.name, USERS.name, MODERATION.name]

CommentChange = CommentCreated | CommentEdited | CommentDeleted


def post_created(event: Event) -> tuple[str, PostCreated] | None:
    if isinstance(event.payload, PostCreated):
        return event.envelope.event_id, event.payload
    return None


def post_row(event_id: str, p: PostCreated) -> tuple:
    return (
        p.post_id,
        p.community_id,
        p.community_name,
        p.author_id,
        p.author_name,
        p.title,
        p.kind,
        p.body,
        p.url,
        p.media_id,
        p.created_at,
        event_id,
        p.media_key,
        p.thumbnail_key,
    )


class PostWriter:
    """Post rows into their community's shard, then the vote marker and listing view."""

    def __init__(
        self, shards: ShardConnections, redis: Redis, deleted: DeletedAccounts | None = None
    ) -> None:
        self.shards = shards
        self.redis = redis
        self.deleted = deleted or DeletedAccounts(shards.settings)

    async def _rows(self, batch: list[tuple[str, PostCreated]]) -> list[asyncpg.Record]:
        """Upserts the rows; returns them as stored (with any edit that came first)."""
        stored: list[asyncpg.Record] = []
        for shard, items in self.shards.group_by_shard(batch, lambda i: i[1].community_id).items():
            conn = await self.shards.conn(shard)
            await upsert_posts(conn, (post_row(eid, p) for eid, p in items))
            stored += await fetch_posts(conn, [p.post_id for _eid, p in items])
        return stored

    def write(self, batch: list[tuple[str, PostCreated]]) -> None:
        gone = self.deleted.among(p.author_id for _eid, p in batch)
        if gone:
            batch = [
                (eid, p.model_copy(update={"author_name": DELETED_NAME}))
                if p.author_id in gone
                else (eid, p)
                for eid, p in batch
            ]
        stored = self.shards.run(self._rows(batch))
        # The marker is written after the row commits: a post is votable once readable.
        pipe = self.redis.pipeline(transaction=False)
        for _eid, p in batch:
            mark_target(pipe, p.post_id, p.community_id, p.author_id, "post")
        for row in stored:  # the view of the row as stored: an edit replayed first shows
            post_views.store(pipe, row)
        pipe.execute()

    def close(self) -> None:
        self.shards.close()
        self.redis.close()
        self.deleted.close()


def comment_change(event: Event) -> CommentChange | None:
    payload = event.payload
    if isinstance(payload, CommentCreated | CommentEdited | CommentDeleted):
        return payload
    return None


class CommentWriter:
    """Comment rows into CQL, then the vote marker of each new comment in Redis."""

    def __init__(
        self, cluster: Cluster, session: Session, redis: Redis, deleted: DeletedAccounts
    ) -> None:
        self.cluster = cluster
        self.rows = CommentRows(session)
        self.redis = redis
        self.deleted = deleted

    def write(self, batch: list[CommentChange]) -> None:
        gone = self.deleted.among(c.author_id for c in batch)
        if gone:
            batch = [
                c.model_copy(update={"author_name": DELETED_NAME})
                if c.author_id in gone and isinstance(c, CommentCreated | CommentEdited)
                else c
                for c in batch
            ]
        self.rows.apply(batch)
        # Written after the rows: a comment is votable once readable.
        pipe = self.redis.pipeline(transaction=False)
        for c in batch:
            if isinstance(c, CommentCreated):
                mark_target(pipe, c.comment_id, c.community_id, c.author_id, "comment")
        pipe.execute()

    def close(self) -> None:
        self.cluster.shutdown()
        self.redis.close()
        self.deleted.close()


class AccountEraser:
    """A deleted account's name leaves everything this dataflow wrote: post rows on
    every shard, stored post views, comment rows (written at the delete timestamp, so
    no replayed event overwrites them)."""

    def __init__(
        self, shards: ShardConnections, cluster: Cluster, session: Session, redis: Redis
    ) -> None:
        self.shards = shards
        self.cluster = cluster
        self.comments = CommentRows(session)
        self.redis = redis

    async def _posts(self, user_id: str) -> list[str]:
        touched: list[str] = []
        for shard in self.shards.placement.view.shards:
            conn = await self.shards.conn(shard)
            touched += await erase_author(conn, user_id, DELETED_NAME)
        return touched

    def write(self, batch: list[UserDeleted]) -> None:
        for deleted in batch:
            post_ids = self.shards.run(self._posts(deleted.user_id))
            post_views.set_author(self.redis, post_ids, DELETED_NAME)
            self.comments.erase_author(deleted.user_id, DELETED_NAME)

    def close(self) -> None:
        self.shards.close()
        self.cluster.shutdown()
        self.redis.close()


def new_comment(change: CommentChange) -> CommentCreated | None:
    return change if isinstance(change, CommentCreated) else None


def by_post(comment: Traced[CommentCreated]) -> str:
    return comment.value.post_id


@dataclass(frozen=True)
class CommentCount:
    post_id: str
    community_id: str
    count: int
    touched: datetime
    # comments per author: a shadow-banned author's share is left out of the count
    # others see (`stores/shadow.py`)
    authors: tuple[tuple[str, int], ...] = ()


class CountFold:
    """Counts a post's comments (each comment.created is one comment: ids are unique)."""

    def __init__(self, state: CommentCount | None, archive_after: timedelta) -> None:
        self.state = state
        self.archive_after = archive_after

    def apply(self, value: CommentCreated) -> None:
        held = self.state or CommentCount(value.post_id, value.community_id, 0, _now())
        authors = dict(held.authors)
        authors[value.author_id] = authors.get(value.author_id, 0) + 1
        self.state = replace(
            held, count=held.count + 1, touched=_now(), authors=tuple(sorted(authors.items()))
        )

    def emit(self) -> Iterable[CommentCount]:
        return [self.state] if self.state is not None else []

    def notify_at(self) -> datetime | None:
        if self.state is None:
            return None
        return evictable_at(self.state.post_id, self.state.touched, self.archive_after)

    def on_notify(self) -> tuple[Iterable[CommentCount], bool]:
        # The post is archived and idle: its count is final.
        return (), True

    def snapshot(self) -> CommentCount | None:
        return self.state  # frozen: safe to hand out


def _now() -> datetime:
    return datetime.now(UTC)


class CountWriter:
    """Each post's comment count into its shard and beside its live score in Redis."""

    def __init__(self, shards: ShardConnections, redis: Redis) -> None:
        self.shards = shards
        self.redis = redis
        self.set_max = PipelinedScript(redis, "set_max_field")

    async def _rows(self, counts: list[CommentCount]) -> None:
        for shard, items in self.shards.group_by_shard(counts, lambda c: c.community_id).items():
            conn = await self.shards.conn(shard)
            await upsert_comment_counts(conn, ((c.post_id, c.community_id, c.count) for c in items))

    def write(self, batch: list[CommentCount]) -> None:
        highest: dict[str, CommentCount] = {}
        for c in batch:
            held = highest.get(c.post_id)
            if held is None or c.count > held.count:
                highest[c.post_id] = c
        self.shards.run(self._rows(list(highest.values())))
        # Listings read the count beside the live score (`t:{post}` field cc); the
        # count never goes down, so the larger value wins.
        calls: list[tuple[list[str], list[str | int]]] = []
        for c in highest.values():
            calls.append(([target_key(c.post_id)], ["cc", c.count]))
            key = shadow.author_counts_key(c.post_id)
            calls.extend(([key], [author, count]) for author, count in c.authors)
        self.set_max.run_all(calls)

    def close(self) -> None:
        self.shards.close()
        self.redis.close()


# What happened to posts and comments after their creation (edits, deletes, a
# moderator's removal, lock, flair) and shadow-bans, applied to the read models.
StateChange = (
    PostEdited | PostDeleted | ContentModerated | PostLocked | PostFlaired | MemberSanctioned
)


def state_change(event: Event) -> StateChange | None:
    p = event.payload
    if isinstance(p, PostEdited | PostDeleted | ContentModerated | PostLocked | PostFlaired):
        return p
    if isinstance(p, MemberSanctioned) and p.kind in ("shadow_ban", "unshadow_ban"):
        return p  # from a moderator or the automatic actor alike
    return None


def post_state_row(c: StateChange) -> tuple[str, str, dict[str, object]] | None:
    """(post id, community id, the post_states columns this change sets), or None."""
    if isinstance(c, PostEdited):
        changed = {"title": c.title, "body": c.body, "url": c.url}
        columns: dict[str, object] = {k: v for k, v in changed.items() if v is not None}
        return c.post_id, c.community_id, {**columns, "edited_at": c.edited_at}
    if isinstance(c, PostDeleted):
        return c.post_id, c.community_id, {"deleted_at": c.deleted_at}
    if isinstance(c, ContentModerated) and c.target_type == "post":
        return c.post_id, c.community_id, {"removed": c.action == "remove"}
    if isinstance(c, PostLocked):
        return c.post_id, c.community_id, {"locked": c.locked}
    if isinstance(c, PostFlaired):
        return c.post_id, c.community_id, {"flair": c.flair}
    return None


class StateWriter:
    """Post states into the post's shard (then the listing view of an edited post is
    rebuilt from its row), comment removals into CQL, shadow-bans into Redis."""

    def __init__(
        self, shards: ShardConnections, cluster: Cluster, session: Session, redis: Redis
    ) -> None:
        self.shards = shards
        self.cluster = cluster
        self.rows = CommentRows(session)
        self.redis = redis

    async def _states(self, rows: list[tuple[str, str, dict[str, object]]]) -> list[asyncpg.Record]:
        edited: list[asyncpg.Record] = []
        for shard, items in self.shards.group_by_shard(rows, lambda r: r[1]).items():
            conn = await self.shards.conn(shard)
            await upsert_post_states(conn, items)
            ids = [post_id for post_id, _c, cols in items if "title" in cols or "url" in cols]
            if ids:
                edited += await fetch_posts(conn, ids)
        return edited

    def write(self, batch: list[StateChange]) -> None:
        rows = [row for c in batch if (row := post_state_row(c)) is not None]
        edited = self.shards.run(self._states(rows)) if rows else []
        flags = [
            (c.post_id, c.target_id, c.action == "remove", micros(c.at))
            for c in batch
            if isinstance(c, ContentModerated) and c.target_type == "comment"
        ]
        if flags:
            self.rows.write_flags(flags)
        pipe = self.redis.pipeline(transaction=True)  # in order: a ban then its lift
        for post in edited:
            post_views.store(pipe, post)
        for c in batch:
            if isinstance(c, MemberSanctioned):
                shadow.apply(pipe, c.community_id, c.user_id, c.kind == "shadow_ban")
        pipe.execute()

    def close(self) -> None:
        self.shards.close()
        self.cluster.shutdown()
        self.redis.close()


@dataclass(frozen=True)
class Sinks:
    posts: Sink[Traced[tuple[str, PostCreated]]]
    comments: Sink[Traced[CommentChange]]
    counts: Sink[Traced[CommentCount]]
    states: Sink[Traced[StateChange]]
    accounts: Sink[Traced[UserDeleted]] | None = None


def build_flow(
    source: Source[SourceItem],
    sinks: Sinks,
    dead_letters: Sink[DeadLetter],
    archive_after: timedelta = timedelta(days=180),
) -> Dataflow:
    flow = Dataflow(NAME)
    guard = Guard(NAME)
    records = events(guard, flow, source)
    posts = guard.map("post_created", records, post_created)
    op.output("posts_out", posts, sinks.posts)
    comments: Stream[Traced[CommentChange]] = guard.map("comment_change", records, comment_change)
    op.output("comments_out", comments, sinks.comments)
    created = guard.map("comment_created", comments, new_comment)
    counts = guard.stateful(
        "comment_count",
        op.key_on("by_post", created, by_post),
        lambda resume: CountFold(resume, archive_after),
    )
    op.output("comment_counts_out", counts, sinks.counts)
    states: Stream[Traced[StateChange]] = guard.map("state_change", records, state_change)
    op.output("states_out", states, sinks.states)
    if sinks.accounts is not None:
        erased = guard.map("user_deleted", records, is_user_deleted)
        op.output("accounts_out", erased, sinks.accounts)
    guard.finish(dead_letters)
    return flow


def wipe(settings: Settings) -> None:
    """Empty the state this dataflow derives (for replay)."""
    truncate_posts(settings)
    truncate_comment_counts(settings)
    truncate_post_states(settings)
    cql.truncate(settings, COMMENT_TABLES)
    redis = sync_client(settings.redis_url)
    clear_target_markers(redis)
    post_views.wipe(redis)
    shadow.wipe(redis)
    redis.close()
