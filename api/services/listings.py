"""Ranked listings: community pages from one Redis set (+ the shard past its end or on a
cache miss) and the home feed merged across the user's communities.

Community pages use a keyset cursor (rank, post id). The home feed's first page
freezes the merged order (a k-way merge by rank of the user's community sets) into a
short-lived snapshot, so later pages have no duplicates or holes however votes move
posts meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from random import random
from typing import Any

import orjson

from api.security import Principal
from api.services.access import Access
from domain.errors import ValidationFailed
from domain.ids import new_id
from domain.ranking import WINDOWS
from stores.communities import CommunityStore
from stores.post_views import fill_missing, listing_item
from stores.posts import RankedPostStore, decode_cursor, encode_cursor
from stores.rankings import SET_LIMIT, Page, RankedListings, rank_key

SORTS = ("hot", "new", "top", "rising", "controversial")
WINDOWED = ("top", "controversial")
FEED_SNAPSHOT = 500  # posts frozen per feed snapshot
FEED_TTL_SECONDS = 900
PAGE_CACHE_SECONDS = 0.25  # micro-cache of ranked pages per API process
# A reader's home-feed pages are kept longer: each is one reader's, so renewing them
# every 250 ms cost Redis a page read per reader and process four times a second, and
# those reads queued the vote lookups of every request behind them (at half load, p99
# 8-15 ms at 250 ms against 5-11 ms at 1 s, and 16 % more feed requests a second at
# full load). The reader's own votes are still looked up on every request.
FEED_PAGE_SECONDS = 1.0
SUBSCRIPTIONS_CACHE_SECONDS = 2.0  # a join or leave shows in the feed within this
# A reader's first page of the home feed reuses the order this process froze for them
# less than this long ago. Freezing is a merge of every subscribed community's ranked
# set (thousands of entries) into a new sorted set of FEED_SNAPSHOT posts: a reader
# refreshing their feed many times a second made Redis do that, and hold one more 70 KB
# set for FEED_TTL_SECONDS, each time. Counts and visibility are read live on every
# page; only the order can be this much older.
FEED_REUSE_SECONDS = 2.0
# Readers who arrived together would freeze their orders together, every reuse time,
# forever: each freeze holds Redis for about 2 ms, so dozens at once stalled every
# request behind them. Each frozen order is reused for a random 1x-1.5x of
# FEED_REUSE_SECONDS, which spreads the freezes out within a few rounds.
SPREAD = 0.5
# A community page: (set key, cursor, limit); a reader's feed page: (user, snapshot,
# cursor, limit).
PageKey = tuple[str, tuple[str, str] | None, int] | tuple[str, str, tuple[str, str] | None, int]
PAGE_CACHE_ENTRIES = 10_000


def spread(seconds: float) -> float:
    """`seconds` to `seconds` x (1 + SPREAD), at random (see SPREAD)."""
    return seconds * (1.0 + SPREAD * random())


@dataclass(frozen=True)
class RankedPage:
    """A community page as everyone sees it; `my_vote` is added per request."""

    expires: float
    items: list[dict[str, Any]]
    json: bytes
    last: tuple[str, str] | None
    size: int
    hidden: int  # entries left out for everyone but their authors and moderators
    heads: tuple[bytes, ...] = ()  # each item's JSON without its closing brace
    post_ids: list[str] | None = None  # the items' ids, for the reader's votes

    def with_votes(self, votes: list[int]) -> orjson.Fragment:
        """The items as JSON with the reader's `my_vote` spliced into each: no copy of
        the items and no encoding per request."""
        spliced = (head + _my_vote(v) for head, v in zip(self.heads, votes, strict=True))
        return orjson.Fragment(b"[" + b",".join(spliced) + b"]")

    def ids(self) -> list[str]:
        return self.post_ids if self.post_ids is not None else [i["post_id"] for i in self.items]

    def items_voted(self, votes: list[int]) -> list[dict[str, Any]]:
        return [{**i, "my_vote": v} for i, v in zip(self.items, votes, strict=True)]


_MY_VOTE = {v: b',"my_vote":%d}' % v for v in (-1, 0, 1)}


def _my_vote(direction: int) -> bytes:
    return _MY_VOTE.get(direction) or b',"my_vote":%d}' % direction


@dataclass(frozen=True)
class FrozenFeed:
    """A home-feed order this process froze for a reader (see FEED_REUSE_SECONDS)."""

    expires: float
    snapshot: str
    communities: tuple[str, ...]


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
        self,
        communities: CommunityStore,
        listings: RankedListings,
        shards: RankedPostStore,
        access: Access,
    ) -> None:
        self.communities = communities
        self.listings = listings
        self.shards = shards
        self.access = access
        self._subscriptions: OrderedDict[str, tuple[float, list[str]]] = OrderedDict()
        self._frozen: OrderedDict[tuple[str, str, str | None], FrozenFeed] = OrderedDict()
        self._pages: OrderedDict[PageKey, RankedPage] = OrderedDict()
        self._loading: dict[PageKey, asyncio.Future[RankedPage]] = {}

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
        after = _keyset(cursor)
        page = await self._ranked_page(
            rank_key(community_id, sort, window), after, limit, community_id
        )
        items: list[dict[str, Any]] | orjson.Fragment
        moderator = False
        votes: list[int] | None = None
        if principal is not None and page.hidden:
            # Something on this page is hidden from everyone but its author and the
            # moderators: the reader may be one of them, so their own page is built.
            standing = await self.access.standing(community_id, principal)
            moderator = standing.moderator
            own = await self.listings.page(
                rank_key(community_id, sort, window),
                after,
                limit,
                principal.user_id,
                pins_of=community_id,
                moderator=moderator,
            )
            mine = await self._items(own)
            listed = own.items() if isinstance(mine, orjson.Fragment) else mine
            page = RankedPage(0.0, listed, b"", own.last, own.size, own.hidden)
            items = listed
        elif principal is None:
            items = orjson.Fragment(page.json)
        else:
            votes = await self.listings.my_votes(principal.user_id, page.ids())
            items = page.with_votes(votes)
        count, last = len(page.items), page.last
        if count < limit and page.size >= SET_LIMIT:
            # Past the end of the bounded set: continue from the shard's rank columns.
            listed = (
                list(items)
                if isinstance(items, list)
                else page.items_voted(votes)
                if votes is not None
                else list(page.items)
            )
            start = (float(last[0]), last[1]) if last else _float_keyset(after)
            hidden_authors = await self._hidden_authors(community_id, principal, moderator)
            rows = await self.shards.page(
                community_id, sort, _window_start(window), start, limit - count, hidden_authors
            )
            listed += [listing_item(row, 0 if principal else None) for row, _rank in rows]
            if rows:
                last = (repr(rows[-1][1]), rows[-1][0]["post_id"])
            items, count = listed, len(listed)
        next_cursor = encode_cursor(list(last)) if count >= limit and last else None
        return {"items": items, "next_cursor": next_cursor}

    async def _ranked_page(
        self, key: str, after: tuple[str, str] | None, limit: int, community_id: str
    ) -> RankedPage:
        """One Redis round trip at most every PAGE_CACHE_SECONDS per page and process:
        hot listings are read far more often than they change."""
        return await self._cached(
            (key, after, limit),
            lambda: self.listings.page(key, after, limit, "", pins_of=community_id),
        )

    async def _cached(
        self,
        key: PageKey,
        read: Callable[[], Awaitable[Page]],
        lasts: float = PAGE_CACHE_SECONDS,
    ) -> RankedPage:
        """The page under `key` if read less than `lasts` seconds ago, else read;
        the requests that find it expired together share that one read."""
        cached = self._pages.get(key)
        if cached is not None and cached.expires > time.monotonic():
            return cached
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._read(key, read, lasts))
            self._loading[key] = loading
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(loading)

    async def _read(
        self, key: PageKey, read: Callable[[], Awaitable[Page]], lasts: float
    ) -> RankedPage:
        page = await read()
        items = await self._items(page)
        listed = page.items() if isinstance(items, orjson.Fragment) else items
        body = page.items_json if isinstance(items, orjson.Fragment) else orjson.dumps(items)
        heads = tuple(orjson.dumps(i)[:-1] for i in listed)
        expires = time.monotonic() + lasts
        ids = [i["post_id"] for i in listed]
        ranked = RankedPage(expires, listed, body, page.last, page.size, page.hidden, heads, ids)
        if page.size >= 0:  # an expired feed snapshot is answered, not kept
            self._pages[key] = ranked
            self._pages.move_to_end(key)
            while len(self._pages) > PAGE_CACHE_ENTRIES:
                self._pages.popitem(last=False)
        return ranked

    async def feed(
        self, principal: Principal, sort: str, window: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """The reader's pages are kept like community pages (FEED_PAGE_SECONDS, per
        process), without their votes: a reader refreshing often costs one lookup of
        their votes per request instead of a page built in Redis."""
        sort, window = sort_key(sort, window)
        user_id = principal.user_id
        if cursor:
            snapshot, rank, post_id, owner = decode_cursor(cursor, 4)
            if not all(isinstance(v, str) for v in (snapshot, rank, post_id)):
                raise ValidationFailed("cursor is not valid", {"cursor": "malformed"})
            if owner != _owner_tag(user_id):
                raise ValidationFailed("cursor belongs to another user", {"cursor": "not yours"})
            after = (rank, post_id)
            page = await self._cached(
                (user_id, snapshot, after, limit),
                lambda: self.listings.frozen_feed_page(snapshot, limit, user_id, after),
                FEED_PAGE_SECONDS,
            )
            if page.size < 0:
                raise ValidationFailed("cursor expired, start again", {"cursor": "expired"})
        else:
            snapshot, page = await self._first_feed_page(user_id, sort, window, limit)
        votes = await self.listings.my_votes(user_id, page.ids())
        more = page.last is not None and len(page.items) >= limit
        owner = _owner_tag(user_id)
        next_cursor = encode_cursor([snapshot, *page.last, owner]) if more and page.last else None
        return {"items": page.with_votes(votes), "next_cursor": next_cursor}

    async def _first_feed_page(
        self, user_id: str, sort: str, window: str | None, limit: int
    ) -> tuple[str, RankedPage]:
        """The reader's recently frozen order if there is one (FEED_REUSE_SECONDS) and
        it still exists, else a newly frozen one."""
        communities = tuple(await self._subscribed(user_id))
        key = (user_id, sort, window)
        now = time.monotonic()
        recent = self._frozen.get(key)
        if recent is not None and recent.expires > now and recent.communities == communities:
            frozen = recent.snapshot
            page = await self._cached(
                (user_id, frozen, None, limit),
                lambda: self.listings.frozen_feed_page(frozen, limit, user_id, None),
                FEED_PAGE_SECONDS,
            )
            if page.size >= 0:
                return frozen, page
        snapshot = new_id()
        set_keys = [rank_key(c, sort, window) for c in communities]
        page = await self._cached(
            (user_id, snapshot, None, limit),
            lambda: self.listings.freeze_feed(
                snapshot,
                set_keys,
                limit,
                user_id,
                FEED_SNAPSHOT,
                FEED_TTL_SECONDS,
            ),
            FEED_PAGE_SECONDS,
        )
        self._frozen[key] = FrozenFeed(now + spread(FEED_REUSE_SECONDS), snapshot, communities)
        self._frozen.move_to_end(key)
        while len(self._frozen) > PAGE_CACHE_ENTRIES:
            self._frozen.popitem(last=False)
        return snapshot, page

    async def _items(self, page: Page) -> list[dict[str, Any]] | orjson.Fragment:
        """The page's items; views missing from Redis are read from the shards."""
        if not page.missing:
            return orjson.Fragment(page.items_json)
        items = page.items()
        absent = [i["post_id"] for i in items if i.get("missing")]
        rows = await self.shards.rows_by_ids(absent)
        filled = []
        for item in items:
            if item.get("missing"):
                row = rows.get(item["post_id"])
                if row is None:
                    continue  # ranked before it was materialised: it shows up shortly
                item = fill_missing(item, row)
            filled.append(item)
        return filled

    async def _hidden_authors(
        self, community_id: str, principal: Principal | None, moderator: bool
    ) -> list[str]:
        if moderator:
            return []
        banned = await self.access.shadow_bans(community_id)
        viewer = principal.user_id if principal is not None else None
        return sorted(u for u in banned if u != viewer)

    async def _subscribed(self, user_id: str) -> list[str]:
        now = time.monotonic()
        cached = self._subscriptions.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        communities = await self.communities.subscribed_community_ids(user_id)
        self._subscriptions[user_id] = (now + SUBSCRIPTIONS_CACHE_SECONDS, communities)
        self._subscriptions.move_to_end(user_id)
        while len(self._subscriptions) > PAGE_CACHE_ENTRIES:
            self._subscriptions.popitem(last=False)
        return communities

    async def _visible_community(self, name: str, principal: Principal | None) -> str:
        """404 for a private community the reader is not a member of."""
        community = await self.access.community_named(name)
        await self.access.readable(community, principal, "community", name)
        return community.community_id


def _owner_tag(user_id: str) -> str:
    """Names a feed cursor's reader without spelling their id."""
    return hashlib.blake2b(user_id.encode(), digest_size=8).hexdigest()


def _keyset(cursor: str | None) -> tuple[str, str] | None:
    if not cursor:
        return None
    rank, post_id = decode_cursor(cursor, 2)
    if not isinstance(rank, str) or not isinstance(post_id, str):
        raise ValidationFailed("cursor is not valid", {"cursor": "malformed"})
    try:
        float(rank)
    except ValueError:
        raise ValidationFailed("cursor is not valid", {"cursor": "malformed"}) from None
    return rank, post_id


def _float_keyset(after: tuple[str, str] | None) -> tuple[float, str] | None:
    return (float(after[0]), after[1]) if after else None


def _window_start(window: str | None) -> datetime | None:
    span = WINDOWS.get(window) if window else None
    return datetime.now(UTC) - span if span else None
