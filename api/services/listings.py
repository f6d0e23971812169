"""Ranked listings: community pages from one Redis set (+ the shard past its end or on a
cache miss) and the home feed merged across the user's communities.

Community pages use a keyset cursor (rank, post id). The home feed's first page
freezes the merged order into a short-lived snapshot, so later pages have no
duplicates or holes however votes move posts meanwhile.
"""

from __future__ import annotations

import heapq
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from api.security import Principal
from api.services.posts import post_view
from domain.errors import Forbidden, ValidationFailed
from domain.ids import new_id
from domain.ranking import WINDOWS
from stores.identity import IdentityStore
from stores.posts import RankedPostStore, decode_cursor, encode_cursor
from stores.rankings import SET_LIMIT, RankedListings, rank_key

SORTS = ("hot", "new", "top", "rising", "controversial")
WINDOWED = ("top", "controversial")
FEED_SNAPSHOT = 500  # posts frozen per feed snapshot
FEED_PER_COMMUNITY = 200
FEED_TTL_SECONDS = 900
COMMUNITY_CACHE_SECONDS = 10.0


def sort_key(sort: str, window: str | None) -> tuple[str, str | None]:
    if sort not in SORTS:
        raise ValidationFailed(f"sort must be one of {', '.join(SORTS)}", {"sort": sort})
    if sort not in WINDOWED:
        return sort, None
    window = window or "day"
    if window not in WINDOWS:
        raise ValidationFailed(f"t must be one of {', '.join(WINDOWS)}", {"t": window})
    return sort, window


class ListingService:
    def __init__(
        self, identity: IdentityStore, listings: RankedListings, shards: RankedPostStore
    ) -> None:
        self.identity = identity
        self.listings = listings
        self.shards = shards
        self._communities: dict[str, tuple[float, str, str]] = {}

    async def community(
        self,
        name: str,
        principal: Principal | None,
        sort: str,
        window: str | None,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        sort, window = sort_key(sort, window)
        community_id = await self._visible_community(name, principal)
        user_id = principal.user_id if principal else ""
        after = _keyset(cursor)
        key = rank_key(community_id, sort, window)
        ranked, views, size = await self.listings.page(
            key, after, limit, user_id, pins_of=community_id if after is None else None
        )
        items = await self._fill(ranked, views, principal)
        last: tuple[str, float] | None = None
        for post_id, rank in reversed(ranked):
            if rank is not None:
                last = (post_id, rank)
                break
        if len(ranked) < limit and size >= SET_LIMIT:
            # Past the end of the bounded set: continue from the shard's rank columns.
            start = (last[1], last[0]) if last else after
            since = _window_start(window)
            rows = await self.shards.page(community_id, sort, since, start, limit - len(ranked))
            items += [post_view(row, 0 if principal else None) for row, _rank in rows]
            if rows:
                last = (rows[-1][0]["post_id"], rows[-1][1])
        full = len(items) >= limit
        next_cursor = encode_cursor([last[1], last[0]]) if full and last else None
        return {"items": items, "next_cursor": next_cursor}

    async def feed(
        self, principal: Principal, sort: str, window: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        sort, window = sort_key(sort, window)
        if cursor:
            snapshot, offset = decode_cursor(cursor, 2)
            if not isinstance(snapshot, str) or not isinstance(offset, int) or offset < 0:
                raise ValidationFailed("cursor is not valid", {"cursor": "malformed"})
            ids = await self.listings.snapshot_slice(snapshot, offset, limit)
            if ids is None:
                raise ValidationFailed("cursor expired, start again", {"cursor": "expired"})
        else:
            communities = await self.identity.subscribed_community_ids(principal.user_id)
            keys = [rank_key(c, sort, window) for c in communities]
            rankings = await self.listings.top_of(keys, FEED_PER_COMMUNITY)
            merged = heapq.merge(*rankings, key=lambda entry: (-entry[1], entry[0]))
            order = [post_id for post_id, _rank in itertools.islice(merged, FEED_SNAPSHOT)]
            snapshot, offset = new_id(), 0
            await self.listings.save_snapshot(snapshot, order, FEED_TTL_SECONDS)
            ids = order[:limit]
        views = await self.listings.views(ids, principal.user_id)
        items = await self._fill([(i, None) for i in ids], views, principal)
        more = await self.listings.snapshot_has(snapshot, offset + limit)
        next_cursor = encode_cursor([snapshot, offset + limit]) if more else None
        return {"items": items, "next_cursor": next_cursor}

    async def _fill(
        self,
        ranked: list[tuple[str, float | None]],
        views: list[dict[str, Any] | None],
        principal: Principal | None,
    ) -> list[dict[str, Any]]:
        """Views from Redis; misses (a cold cache) read from the shards in parallel."""
        missing = [post_id for (post_id, _), view in zip(ranked, views, strict=True) if not view]
        rows = await self.shards.rows_by_ids(missing) if missing else {}
        items = []
        for (post_id, _rank), view in zip(ranked, views, strict=True):
            if view is None:
                row = rows.get(post_id)
                if row is None:
                    continue  # ranked before it was materialised: it shows up shortly
                view = post_view(row, 0)
            if principal is None:
                view.pop("my_vote", None)
            items.append(view)
        return items

    async def _visible_community(self, name: str, principal: Principal | None) -> str:
        cached = self._communities.get(name.lower())
        if cached is None or cached[0] < time.monotonic():
            row = await self.identity.get_community(name)
            cached = (time.monotonic() + COMMUNITY_CACHE_SECONDS, row.community_id, row.visibility)
            self._communities[name.lower()] = cached
        _expires, community_id, visibility = cached
        if visibility == "private" and (
            principal is None or not await self.identity.is_member(community_id, principal.user_id)
        ):
            raise Forbidden("this community is private", {"community": name})
        return community_id


def _keyset(cursor: str | None) -> tuple[float, str] | None:
    if not cursor:
        return None
    rank, post_id = decode_cursor(cursor, 2)
    if not isinstance(rank, int | float) or not isinstance(post_id, str):
        raise ValidationFailed("cursor is not valid", {"cursor": "malformed"})
    return float(rank), post_id


def _window_start(window: str | None) -> datetime | None:
    span = WINDOWS.get(window) if window else None
    return datetime.now(UTC) - span if span else None
