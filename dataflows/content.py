"""content: posts topic -> post rows in the community's shard, then the target marker in
Redis that lets the API accept votes on it.

`python -m dataflows run content`.
"""

from __future__ import annotations

from collections.abc import Callable

import bytewax.operators as op
import orjson
from bytewax.dataflow import Dataflow

from dataflows.common import Event, kafka_events
from dataflows.sinks import FunctionSink, ShardConnections, execute_on_shards
from schemas.events import PostCreated
from schemas.topics import POSTS
from stores.posts import upsert_posts
from stores.rankings import view_key
from stores.redis_store import sync_client, target_key
from stores.settings import Settings, get_settings

NAME = "content"


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


def build_flow(tail: bool = True, settings: Settings | None = None) -> Dataflow:
    settings = settings or get_settings()
    flow = Dataflow(NAME)
    events = kafka_events(flow, NAME, settings.kafka_bootstrap, [POSTS.name], tail=tail)
    posts = op.filter_map("post_created", events, post_created)
    op.output("posts_out", posts, post_sink(settings))
    return flow


def wipe(settings: Settings) -> None:
    """Empty the state this dataflow derives (for replay)."""
    execute_on_shards(settings, "TRUNCATE posts")
    redis = sync_client(settings.redis_url)
    for key in redis.scan_iter(match="t:*", count=1000):
        redis.hdel(key, "c", "a", "k")
    for key in redis.scan_iter(match="pv:*", count=1000):
        redis.delete(key)
    redis.close()
