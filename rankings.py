"""Redis read model for listings: per-community sorted sets and pins.

Keys: `rank:{community}:{sort}` sorted sets (sort: hot, new, rising, top:{window},
controversial:{window}); `pins:{community}` JSON list of pinned post ids; `feed:{user}:{id}`
frozen home-feed orders. Items are the stored post views (`pv:{post}`, see
post_views) with the counts from `t:{post}` (see redis_store), so listings show the
live tally. Pages are built as JSON inside Redis (`lua/listings.lua`, a function
library): one round trip and no per-item work in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis
from redis.client import Pipeline
from redis.exceptions import ResponseError

from stores.redis_store import LUA, delete_matching

SET_LIMIT = 1000  # entries kept per set; deeper pages come from the shard


def rank_key(community_id: str, sort: str, window: str | None = None) -> str:
    return f"rank:{community_id}:{sort}" + (f":{window}" if window else "")


def pins_key(community_id: str) -> str:
    return f"pins:{community_id}"


def snapshot_key(user_id: str, snapshot: str) -> str:
    """A frozen home feed belongs to its reader: another user's cursor names nothing."""
    return f"feed:{user_id}:{snapshot}"


@dataclass(frozen=True)
class Page:
    items_json: bytes  # a JSON array of listing items
    last: tuple[str, str] | None  # (rank as Redis wrote it, post id) of the last ranked item
    missing: int  # items whose view is not cached (marked "missing": true)
    size: int  # entries in the set; -1 for an expired feed snapshot
    count: int  # items on the page
    hidden: int = 0  # entries skipped: deleted, removed or shadow-banned for this reader

    def items(self) -> list[dict[str, Any]]:
        return list(orjson.loads(self.items_json))


def _page(raw: list[Any]) -> Page:
    items, rank, post_id, missing, size, count, hidden = raw
    last = (_text(rank), _text(post_id)) if _text(rank) else None
    return Page(_bytes(items), last, int(missing), int(size), int(count), int(hidden))


def library_source() -> str:
    return (LUA / "listings.lua").read_text()


def load_library(client: redis.Redis) -> None:
    """Install (or upgrade) the listing functions from a synchronous client."""
    client.function_load(library_source(), replace=True)


def function_missing(exc: ResponseError) -> bool:
    """A Redis that lost its functions: restarted without persistence, or flushed."""
    return "function not found" in str(exc).lower()


def write_pipelined(client: redis.Redis, queue: Callable[[Pipeline], None]) -> None:
    """Run the writes `queue` puts on a pipeline; if Redis lost the listing functions,
    install them and run the writes once more (each is idempotent: the same scores
    and set members again), instead of refusing every record of the batch."""
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        queue(pipe)
        try:
            pipe.execute()
            return
        except ResponseError as exc:
            if attempt == 2 or not function_missing(exc):
                raise
            load_library(client)


def store_pins(pipe: redis.Redis, community_id: str, post_ids: list[str]) -> None:
    """Queue the write of a community's pinned posts (the full list, oldest first)."""
    pipe.set(pins_key(community_id), orjson.dumps(post_ids))


def ranked_count(
    client: redis.Redis, community_id: str, sort: str, window: str | None = None
) -> int:
    """How many posts a community's set holds."""
    return int(client.zcard(rank_key(community_id, sort, window)))  # type: ignore[arg-type]


def wipe(client: redis.Redis) -> None:
    """Delete every ranked set and pin list (before the ranking dataflow replays)."""
    delete_matching(client, rank_key("*", "*"))
    delete_matching(client, pins_key("*"))


class RankedListings:
    """The API side of the listing read model."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def load(self) -> None:
        """Install (or upgrade) the function library; idempotent."""
        await self.client.function_load(library_source(), replace=True)  # type: ignore[misc]

    async def _call(self, function: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.client.fcall(function, len(keys), *keys, *args)  # type: ignore[misc]
        except ResponseError as exc:  # a Redis that lost its functions (or never had them)
            if not function_missing(exc):
                raise
            await self.load()
            return await self.client.fcall(function, len(keys), *keys, *args)  # type: ignore[misc]

    async def page(
        self,
        key: str,
        after: tuple[str, str] | None,
        limit: int,
        user_id: str,
        pins_of: str | None = None,
        moderator: bool = False,
    ) -> Page:
        """A page of a ranked set after the keyset cursor, as `user_id` ('' for anyone)
        sees it: deleted, removed and (unless theirs, or `moderator`) shadow-banned
        posts left out. With `pins_of` (a community id) the first page leads with that
        community's pinned posts."""
        keys = [key] if pins_of is None or after else [key, pins_key(pins_of)]
        args: list[Any] = [limit, user_id, "1" if moderator else "", *(after or ())]
        raw = await self._call("rank_page", keys, args)
        return _page(raw)

    async def freeze_feed(
        self, snapshot: str, set_keys: list[str], limit: int, user_id: str, size: int, ttl: int
    ) -> Page:
        """Freezes the union of `set_keys` (its best `size` entries, kept `ttl` seconds)
        into `snapshot` and returns its first page."""
        keys = [snapshot_key(user_id, snapshot), *set_keys]
        raw = await self._call("feed_page", keys, [limit, user_id, size, ttl])
        return _page(raw)

    async def frozen_feed_page(
        self, snapshot: str, limit: int, user_id: str, after: tuple[str, str] | None
    ) -> Page:
        """A page of a frozen snapshot, after the cursor or from its start; size -1 if
        the snapshot is gone."""
        args: list[Any] = [limit, user_id, 0, 0, *(after or ())]
        raw = await self._call("feed_page", [snapshot_key(user_id, snapshot)], args)
        return _page(raw)

    async def my_votes(self, user_id: str, post_ids: list[str]) -> list[int]:
        if not post_ids:
            return []
        raw = await self._call("my_votes", [], [user_id, *post_ids])
        return [int(v) for v in raw]


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
