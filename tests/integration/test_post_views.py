"""The listing item Redis builds (`lua/listings.lua` over `pv:` and `t:`) equals the one
built from the post's shard row."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from domain.ids import new_id, new_post_id
from schemas.events import PostCreated
from stores import post_views
from stores.post_views import listing_item, view_key
from stores.rankings import load_library, pins_key, rank_key, store_pins
from stores.redis_store import (
    mark_target,
    seed_live_counts,
    sync_client,
    target_key,
    voters_key,
)


def test_redis_and_shard_items_agree(stack, settings):
    redis = sync_client(settings.redis_url)
    load_library(redis)
    community = new_id()
    posts = [
        PostCreated(
            post_id=new_post_id(community),
            community_id=community,
            community_name="items",
            author_id=new_id(),
            author_name="writer",
            title=f"post {i}",
            kind="text",
            body="never listed",
            created_at=datetime.now(UTC),
        )
        for i in range(2)
    ]
    key = rank_key(community, "new")
    try:
        pipe = redis.pipeline(transaction=False)
        for i, p in enumerate(posts):
            post_views.store(pipe, p)
            mark_target(pipe, p.post_id, community, p.author_id, "post")
            seed_live_counts(pipe, p.post_id, 4 + i, 1)
            pipe.hset(target_key(p.post_id), "cc", "2")
            pipe.hset(voters_key(p.post_id), "reader", "1")
            pipe.fcall("rank_write", 1, key, p.post_id, 10, repr(float(i)))
        store_pins(pipe, community, [posts[0].post_id])
        pipe.execute()
        raw = redis.fcall("rank_page", 2, key, pins_key(community), 10, "reader")
        items = orjson.loads(raw[0])  # type: ignore[index]
        rows = [
            {**p.model_dump(), "upvotes": 4 + i, "downvotes": 1, "score": 3 + i, "comment_count": 2}
            for i, p in enumerate(posts)
        ]
        assert items == [
            listing_item(rows[0], my_vote=1, pinned=True),
            listing_item(rows[1], my_vote=1),
        ]
        # a view Redis lost comes back from the shard row, with the same fields
        redis.delete(view_key(posts[1].post_id))
        raw = redis.fcall("rank_page", 1, key, 10, "reader")
        missing = orjson.loads(raw[0])[0]  # type: ignore[index]
        assert missing["missing"] is True
        assert post_views.fill_missing(missing, rows[1]) == listing_item(rows[1], my_vote=1)
    finally:
        for p in posts:
            redis.delete(view_key(p.post_id), target_key(p.post_id), voters_key(p.post_id))
        redis.delete(key, pins_key(community))
        redis.close()
