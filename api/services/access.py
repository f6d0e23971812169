"""Community look-ups and the reader's standing, shared by every service that serves or
accepts content: the policy itself is `domain.access`.

Community settings are cached per process for `ttl` seconds (half a second: a
visibility change reaches every read path within it; the worker that made the change
forgets its entry at once). Standings are never cached: a ban or an approval applies
to the next request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from api.security import Principal
from domain.access import ANONYMOUS, Standing, check_read
from stores import moderation
from stores.communities import CommunityRow, CommunityStore

CACHE_ENTRIES = 10_000


class Access:
    def __init__(self, communities: CommunityStore, ttl: float = 0.5) -> None:
        self.communities = communities
        self.ttl = ttl
        self._by_id: OrderedDict[str, tuple[float, CommunityRow]] = OrderedDict()
        self._by_name: OrderedDict[str, tuple[float, CommunityRow]] = OrderedDict()

    def _keep(
        self, cache: OrderedDict[str, tuple[float, CommunityRow]], key: str, row: CommunityRow
    ) -> None:
        cache[key] = (time.monotonic() + self.ttl, row)
        cache.move_to_end(key)
        while len(cache) > CACHE_ENTRIES:
            cache.popitem(last=False)

    async def community(self, community_id: str) -> CommunityRow:
        """NotFound for an unknown id."""
        cached = self._by_id.get(community_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        row = await self.communities.get_community_by_id(community_id)
        self._keep(self._by_id, community_id, row)
        return row

    async def community_named(self, name: str) -> CommunityRow:
        key = name.lower()
        cached = self._by_name.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        row = await self.communities.get_community(name)
        self._keep(self._by_name, key, row)
        return row

    def forget(self, row: CommunityRow) -> None:
        self._by_id.pop(row.community_id, None)
        self._by_name.pop(row.name.lower(), None)

    async def standing(self, community_id: str, principal: Principal | None) -> Standing:
        if principal is None:
            return ANONYMOUS
        return await self.communities.standing(community_id, principal.user_id)

    async def readable(
        self, community: CommunityRow, principal: Principal | None, what: str, key: str
    ) -> Standing | None:
        """NotFound unless the reader may see the community's content. Returns the
        standing when it had to be read (private communities), else None."""
        if community.visibility != "private":
            return None
        standing = await self.standing(community.community_id, principal)
        check_read(community.visibility, standing, what, {what: key})
        return standing

    async def visible(
        self, items: Sequence[Mapping[str, Any]], principal: Principal | None
    ) -> list[bool]:
        """For each item (with `community_id`, `author_id` and optionally `removed`):
        may the reader see it in a list? Private communities only for members; removed
        items and those of shadow-banned authors only for their author and moderators."""
        if not items:
            return []
        viewer = principal.user_id if principal else None
        ids = sorted({str(i["community_id"]) for i in items})
        readable = await self.communities.readable_community_ids(viewer, ids)
        moderated = await self.communities.moderated_community_ids(viewer, ids) if viewer else set()
        pairs = sorted({(str(i["community_id"]), str(i["author_id"])) for i in items})
        shadowed = await moderation.shadow_banned_in(self.communities.pool, pairs)
        shown = []
        for i in items:
            community, author = str(i["community_id"]), str(i["author_id"])
            privileged = author == viewer or community in moderated
            hidden = bool(i.get("removed")) or (community, author) in shadowed
            shown.append(community in readable and (privileged or not hidden))
        return shown
