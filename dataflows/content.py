"""content: posts topic -> post rows in the community's shard, then the target marker in
Redis that lets the API accept votes on it; comments topic -> comment rows in CQL
(partition = post, clustering = materialised path), their vote markers, and each
post's comment count in its shard.

The count is kept per post in the dataflow's state (recovered with its offsets, so
exact) and written as an absolute value that never goes down. Like vote tallies it is
evicted once the post is archived (the API refuses comments then) and idle.

`python -m dataflows run content`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import orjson
from bytewax.dataflow import Dataflow, Stream

from dataflows.common import Event, kafka_events
from dataflows.sinks import FunctionSink, ShardConnections, execute_on_shards
from dataflows.votes import ARCHIVE_GRACE, IDLE_BEFORE_EVICTION
from domain.ids import created_at
from schemas.events import CommentCreated, CommentDeleted, CommentEdited, PostCreated
from schemas.topics import COMMENTS, POSTS
from stores import cql
from stores.comments import COMMENT_TABLES, CommentWriter
from stores.posts import upsert_comment_counts, upsert_posts
from stores.rankings import view_key
from stores.redis_store import script_source, sync_client, target_key
from stores.settings import Settings, get_settings

NAME = "content"

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
    )


def listing_view(p: PostCreated) -> bytes:
    """The fields a listing shows that never change with votes (those come from `t:`)."""
    return orjson.dumps(
        {
            "post_id": p.post_id,
            "community": p.community_name,
            "author": p.author_name,
            "title": p.title,
            "kind": p.kind,
            "url": p.url,
            "created_at": p.created_at.isoformat().replace("+00:00", "Z"),
        }
    )


def post_sink(settings: Settings) -> FunctionSink[tuple[str, PostCreated]]:
    def factory() -> tuple[Callable[[list[tuple[str, PostCreated]]], None], Callable[[], None]]:
        shards = ShardConnections(settings)
        redis = sync_client(settings.redis_url)

        async def write_rows(batch: list[tuple[str, PostCreated]]) -> None:
            for shard, items in shards.group_by_shard(batch, lambda i: i[1].community_id).items():
                conn = await shards.conn(shard)
                await upsert_posts(conn, (post_row(eid, p) for eid, p in items))

        def write(batch: list[tuple[str, PostCreated]]) -> None:
            shards.run(write_rows(batch))
            # The marker is written after the row commits: a post is votable once readable.
            pipe = redis.pipeline(transaction=False)
            for _eid, p in batch:
                pipe.hset(
                    target_key(p.post_id),
                    mapping={"c": p.community_id, "a": p.author_id, "k": "post"},
                )
                pipe.set(view_key(p.post_id), listing_view(p))
            pipe.execute()

        def close() -> None:
            shards.close()
            redis.close()

        return write, close

    return FunctionSink(factory)


def comment_change(event: Event) -> CommentChange | None:
    payload = event.payload
    if isinstance(payload, CommentCreated | CommentEdited | CommentDeleted):
        return payload
    return None


def comment_sink(settings: Settings) -> FunctionSink[CommentChange]:
    """Comment rows into CQL, then the vote marker of each new comment in Redis."""

    def factory() -> tuple[Callable[[list[CommentChange]], None], Callable[[], None]]:
        cluster, session = cql.connect(settings)
        writer = CommentWriter(session)
        redis = sync_client(settings.redis_url)

        def write(batch: list[CommentChange]) -> None:
            writer.apply(batch)
            # Written after the rows: a comment is votable once readable.
            pipe = redis.pipeline(transaction=False)
            for c in batch:
                if isinstance(c, CommentCreated):
                    pipe.hset(
                        target_key(c.comment_id),
                        mapping={"c": c.community_id, "a": c.author_id, "k": "comment"},
                    )
            pipe.execute()

        def close() -> None:
            cluster.shutdown()
            redis.close()

        return write, close

    return FunctionSink(factory)


def new_comment(change: CommentChange) -> CommentCreated | None:
    return change if isinstance(change, CommentCreated) else None


def by_post(comment: CommentCreated) -> str:
    return comment.post_id


@dataclass(frozen=True)
class CommentCount:
    post_id: str
    community_id: str
    count: int
    touched: datetime


class CountLogic(op.StatefulBatchLogic[CommentCreated, CommentCount, CommentCount]):
    """Counts a post's comments (each comment.created is one comment: ids are unique)."""

    def __init__(self, state: CommentCount | None, archive_after: timedelta) -> None:
        self.state = state
        self.archive_after = archive_after

    def on_batch(self, values: list[CommentCreated]) -> tuple[Iterable[CommentCount], bool]:
        held = self.state or CommentCount(values[0].post_id, values[0].community_id, 0, _now())
        self.state = replace(held, count=held.count + len(values), touched=_now())
        return [self.state], op.StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        if self.state is None:
            return None
        closes = created_at(self.state.post_id) + self.archive_after + ARCHIVE_GRACE
        return max(closes, self.state.touched + IDLE_BEFORE_EVICTION)

    def on_notify(self) -> tuple[Iterable[CommentCount], bool]:
        # The post is archived and idle: its count is final.
        return (), op.StatefulBatchLogic.DISCARD

    def snapshot(self) -> CommentCount:
        assert self.state is not None
        return self.state  # frozen: safe to hand out


def _now() -> datetime:
    return datetime.now(UTC)


def count_sink(settings: Settings) -> FunctionSink[tuple[str, CommentCount]]:
    def factory() -> tuple[Callable[[list[tuple[str, CommentCount]]], None], Callable[[], None]]:
        shards = ShardConnections(settings)
        redis = sync_client(settings.redis_url)
        set_max = redis.register_script(script_source("set_max_field"))

        async def write_rows(counts: list[CommentCount]) -> None:
            for shard, items in shards.group_by_shard(counts, lambda c: c.community_id).items():
                conn = await shards.conn(shard)
                await upsert_comment_counts(
                    conn, ((c.post_id, c.community_id, c.count) for c in items)
                )

        def write(batch: list[tuple[str, CommentCount]]) -> None:
            highest: dict[str, CommentCount] = {}
            for _key, c in batch:
                held = highest.get(c.post_id)
                if held is None or c.count > held.count:
                    highest[c.post_id] = c
            shards.run(write_rows(list(highest.values())))
            # Listings read the count beside the live score (`t:{post}` field cc); the
            # count never goes down, so the larger value wins.
            pipe = redis.pipeline(transaction=False)
            for c in highest.values():
                set_max(keys=[target_key(c.post_id)], args=["cc", c.count], client=pipe)
            pipe.execute()

        def close() -> None:
            shards.close()
            redis.close()

        return write, close

    return FunctionSink(factory)


def build_flow(tail: bool = True, settings: Settings | None = None) -> Dataflow:
    settings = settings or get_settings()
    archive_after = timedelta(days=settings.vote_archive_days)
    flow = Dataflow(NAME)
    events = kafka_events(
        flow, NAME, settings.kafka_bootstrap, [POSTS.name, COMMENTS.name], tail=tail
    )
    posts = op.filter_map("post_created", events, post_created)
    op.output("posts_out", posts, post_sink(settings))
    comments: Stream[CommentChange] = op.filter_map("comment_change", events, comment_change)
    op.output("comments_out", comments, comment_sink(settings))
    created = op.key_on("by_post", op.filter_map("comment_created", comments, new_comment), by_post)
    counts = op.stateful_batch(
        "comment_count", created, lambda resume: CountLogic(resume, archive_after)
    )
    op.output("comment_counts_out", counts, count_sink(settings))
    return flow


def wipe(settings: Settings) -> None:
    """Empty the state this dataflow derives (for replay)."""
    execute_on_shards(settings, "TRUNCATE posts")
    execute_on_shards(settings, "TRUNCATE post_comment_counts")
    cql.truncate(settings, COMMENT_TABLES)
    redis = sync_client(settings.redis_url)
    for key in redis.scan_iter(match="t:*", count=1000):
        redis.hdel(key, "c", "a", "k")
    for key in redis.scan_iter(match="pv:*", count=1000):
        redis.delete(key)
    redis.close()
