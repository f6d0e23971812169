"""Redis read model for listings: per-community sorted sets, post views and pins.

Keys: `rank:{community}:{sort}` sorted sets (sort: hot, new, rising, top:{window},
controversial:{window}); `pv:{post}` the listing fields of a post as JSON (written by
the content dataflow); `pins:{community}` JSON list of pinned post ids. Scores come
from `t:{post}` (see redis_store) so listings show the live tally.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from stores.redis_store import script_source

SET_LIMIT = 1000  # entries kept per set; deeper pages come from the shard


def rank_key(community_id: str, sort: str, window: str | None = None) -> str:
    return f"rank:{community_id}:{sort}" + (f":{window}" if window else "")


def view_key(post_id: str) -> str:
    return f"pv:{post_id}"


def pins_key(community_id: str) -> str:
    return f"pins:{community_id}"


class RankedListings:
    """The API side: pages of ranked post ids and their views in one round trip each."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._page = client.register_script(script_source("rank_page"))
        self._views = client.register_script(script_source("post_views"))

    async def page(
        self,
        key: str,
        after: tuple[float, str] | None,
        limit: int,
        user_id: str,
        pins_of: str | None = None,
    ) -> tuple[list[tuple[str, float | None]], list[dict[str, Any] | None], int]:
        """Up to `limit` (post id, rank) after the keyset cursor, with their views, and
        the set's size. With `pins_of` (a community id) the first page leads with its
        pinned posts (rank None)."""
        keys = [key] if pins_of is None else [key, pins_key(pins_of)]
        args: list[Any] = [limit, user_id]
        if after is not None:
            args += [repr(after[0]), after[1]]
        ids, ranks, views, size = await self._page(keys=keys, args=args)
        ranked = [
            (_text(i), float(r) if r not in (b"", "") else None)
            for i, r in zip(ids, ranks, strict=True)
        ]
        return ranked, [_view(v) for v in views], int(size)

    async def views(self, post_ids: list[str], user_id: str) -> list[dict[str, Any] | None]:
        if not post_ids:
            return []
        raw = await self._views(keys=[], args=[user_id, *post_ids])
        return [_view(v) for v in raw]

    async def save_snapshot(self, snapshot: str, post_ids: list[str], ttl: int) -> None:
        key = f"feed:{snapshot}"
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)
        if post_ids:
            pipe.rpush(key, *post_ids)
        else:
            pipe.rpush(key, "")  # an empty snapshot still exists until it expires
        pipe.expire(key, ttl)
        await pipe.execute()

    async def snapshot_slice(self, snapshot: str, offset: int, limit: int) -> list[str] | None:
        """Ids of a frozen feed page; None once the snapshot expired."""
        key = f"feed:{snapshot}"
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(key)
        pipe.lrange(key, offset, offset + limit - 1)
        exists, ids = await pipe.execute()
        if not exists:
            return None
        return [_text(i) for i in ids if i]

    async def snapshot_has(self, snapshot: str, index: int) -> bool:
        return bool(await self.client.lindex(f"feed:{snapshot}", index))  # type: ignore[misc]

    async def pins(self, community_id: str) -> list[str]:
        raw = await self.client.get(pins_key(community_id))
        return list(orjson.loads(raw)) if raw else []

    async def top_of(self, keys: list[str], count: int) -> list[list[tuple[str, float]]]:
        """The first `count` entries of several sets, pipelined into one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.zrevrange(key, 0, count - 1, withscores=True)
        results = await pipe.execute()
        return [[(_text(m), float(s)) for m, s in rows] for rows in results]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _view(raw: list[Any] | None) -> dict[str, Any] | None:
    """[view json, up, down, comment count, my vote] -> listing item (None: not cached)."""
    if not raw or not raw[0]:
        return None
    view: dict[str, Any] = orjson.loads(raw[0])
    up, down = int(raw[1] or 0), int(raw[2] or 0)
    view.update(
        upvotes=up,
        downvotes=down,
        score=up - down,
        comment_count=int(raw[3] or 0),
        my_vote=int(raw[4] or 0),
    )
    return view
