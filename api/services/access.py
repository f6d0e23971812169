"""Community look-ups and the reader's standing, shared by every service that serves or
accepts content: the policy itself is `domain.access`.

Community settings are cached per process for `ttl` seconds (half a second: a
visibility change reaches every read path within it; the worker that made the change
forgets its entry at once). Standings are read afresh on every request, so a ban or an
approval applies to the next one. While Postgres is unreachable both serve what this
process last read (`LastingCache`): votes and reads go on through a restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from api.lasting_cache import LastingCache
from api.security import Principal
from domain.access import ANONYMOUS, Standing, check_read
from stores import moderation
from stores.communities import CommunityRow, CommunityStore

CACHE_ENTRIES = 10_000


class Access:
    def __init__(self, communities: CommunityStore, ttl: float = 0.5) -> None:
        self.communities = communities
        self._by_id: LastingCache[str, CommunityRow] = LastingCache(ttl, entries=CACHE_ENTRIES)
        self._by_name: LastingCache[str, CommunityRow] = LastingCache(ttl, entries=CACHE_ENTRIES)
        self._standings: LastingCache[tuple[str, str], Standing] = LastingCache(0.0)

    async def community(self, community_id: str) -> CommunityRow:
        """NotFound for an unknown id."""
        return await self._by_id.get(
            community_id, lambda: self.communities.get_community_by_id(community_id)
        )

    async def community_named(self, name: str) -> CommunityRow:
        return await self._by_name.get(name.lower(), lambda: self.communities.get_community(name))

    def forget(self, row: CommunityRow) -> None:
        self._by_id.forget(row.community_id)
        self._by_name.forget(row.name.lower())

    async def standing(self, community_id: str, principal: Principal | None) -> Standing:
        if principal is None:
            return ANONYMOUS
        user_id = principal.user_id
        return await self._standings.get(
            (community_id, user_id), lambda: self.communities.standing(community_id, user_id)
        )

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
