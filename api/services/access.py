"""Community look-ups and the reader's standing, shared by every service that serves or
accepts content: the policy itself is `domain.access`.

Community settings and readers' standings are cached per process. While Postgres's
change notices flow (stores/cache_notices.py) an entry lives `NOTICED_TTL` seconds and
is forgotten the moment its row changes, so a ban, an approval or a visibility change
applies to the next request without a query per request; a standing also lives no
longer than its first sanction. Without notices a community lives half a second and a
standing is read on every request. While Postgres is unreachable both serve what this
process last read (`LastingCache`): votes and reads go on through a restart.

A voter's standing is the exception that is kept (`voting_standing`): with it the
process keeps the standing's version from `stores.standing_versions`, read before the
standing, and the vote script refuses a vote whose standing changed since (the vote
is then checked again against a fresh read). So a ban applies to the very next vote,
on every process, without a Postgres read per vote. Every change of a standing goes
through `standing_changed`, which bumps that version once the change has committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from api.lasting_cache import LastingCache
from api.security import Principal
from domain.access import ANONYMOUS, Standing, check_read
from domain.errors import NotFound
from stores import moderation
from stores.cache_notices import Notice
from stores.communities import CommunityRow, CommunityStore
from stores.kafka import run_to_completion
from stores.standing_versions import StandingVersions

T = TypeVar("T")
UNCHECKED = "*"  # a standing version the vote script does not compare

CACHE_ENTRIES = 10_000
STANDING_ENTRIES = 100_000
NOTICED_TTL = 60.0


def _until(ends: datetime | None) -> float:
    return NOTICED_TTL if ends is None else (ends - datetime.now(UTC)).total_seconds()


def _seconds_left(standing: Standing) -> float:
    return _until(standing.changes_at())


def _voting_seconds_left(held: tuple[Standing, str]) -> float:
    return _seconds_left(held[0])


def _first_to_end(bans: Mapping[str, datetime | None]) -> float:
    return _until(min((u for u in bans.values() if u is not None), default=None))


class Access:
    def __init__(
        self,
        communities: CommunityStore,
        ttl: float = 0.5,
        versions: StandingVersions | None = None,
        keep_voting_standings: bool = True,
    ) -> None:
        self.communities = communities
        self.ttl = ttl
        self.versions = versions
        self.keep_voting_standings = keep_voting_standings
        # (community, voter) -> (standing, its version): checked by the vote script
        self._voting: LastingCache[tuple[str, str], tuple[Standing, str]] = LastingCache(
            NOTICED_TTL, entries=STANDING_ENTRIES, ttl_of=_voting_seconds_left
        )
        self._by_id: LastingCache[str, CommunityRow] = LastingCache(ttl, entries=CACHE_ENTRIES)
        self._by_name: LastingCache[str, CommunityRow] = LastingCache(ttl, entries=CACHE_ENTRIES)
        self._standings: LastingCache[tuple[str, str], Standing] = LastingCache(
            0.0, entries=STANDING_ENTRIES, ttl_of=_seconds_left
        )
        # community -> its shadow-banned users (and until when): what lists hide
        self._shadow_bans: LastingCache[str, Mapping[str, datetime | None]] = LastingCache(
            0.0, entries=CACHE_ENTRIES, ttl_of=_first_to_end
        )

    def notices_flowing(self, flowing: bool) -> None:
        """Change notices started or stopped: what was read before may be stale."""
        self._by_id.ttl = self._by_name.ttl = NOTICED_TTL if flowing else self.ttl
        # Standings stay read on every request: a notice arrives a few ms after its
        # commit, and a ban must apply to the very next request (a client may send it
        # sooner); the cache only serves them while Postgres is unreachable.
        self._shadow_bans.ttl = NOTICED_TTL if flowing else 0.0
        self._by_id.expire_all()
        self._by_name.expire_all()
        self._standings.expire_all()
        self._shadow_bans.expire_all()

    def noticed(self, notice: Notice) -> None:
        if notice.kind == "standing" and notice.community_id and notice.user_id:
            self._forget_standing(notice.community_id, notice.user_id)
        elif notice.kind == "community" and notice.community_id:
            known = self._by_id.peek(notice.community_id)
            self._by_id.forget(notice.community_id)
            if known is not None:
                self._by_name.forget(known.name.lower())
            else:  # the name it is cached under is not known here
                self._by_name.expire_all()

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

    async def voting_standing(
        self, community_id: str, principal: Principal
    ) -> tuple[Standing, str]:
        """The voter's standing and the version to check the vote against (`UNCHECKED`
        when standings are not kept: then the standing is read now)."""
        user_id = principal.user_id
        if self.versions is None or not self.keep_voting_standings:
            return await self.standing(community_id, principal), UNCHECKED
        versions = self.versions

        async def load() -> tuple[Standing, str]:
            version = await versions.read(community_id, user_id)  # first: see the module
            return await self.communities.standing(community_id, user_id), version

        return await self._voting.get((community_id, user_id), load)

    def forget_voting_standing(self, community_id: str, user_id: str) -> None:
        self._voting.forget((community_id, user_id))

    async def standing_changed(self, community_id: str, user_id: str, change: Awaitable[T]) -> T:
        """Run `change` (a write of the user's standing that commits when it returns),
        then bump the standing's version before the caller answers; both run to the end
        even if the client goes away."""

        async def whole() -> T:
            done = await change
            if self.versions is not None:
                await self.versions.bump(community_id, user_id)
            self._forget_standing(community_id, user_id)
            return done

        return await run_to_completion(whole())

    def _forget_standing(self, community_id: str, user_id: str) -> None:
        self._standings.forget((community_id, user_id))
        self._voting.forget((community_id, user_id))
        self._shadow_bans.forget(community_id)

    async def shadow_bans(self, community_id: str) -> Mapping[str, datetime | None]:
        """The community's shadow-banned users (-> until when)."""
        pool = self.communities.pool
        return await self._shadow_bans.get(
            community_id, lambda: moderation.shadow_bans(pool, community_id)
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
        readable: set[str] = set()
        moderated: set[str] = set()
        shadowed: dict[str, Mapping[str, datetime | None]] = {}
        for community_id in sorted({str(i["community_id"]) for i in items}):
            try:
                community = await self.community(community_id)
            except NotFound:
                continue
            standing = await self.standing(community_id, principal)
            if community.visibility != "private" or standing.member:
                readable.add(community_id)
            if standing.moderator:
                moderated.add(community_id)
            shadowed[community_id] = await self.shadow_bans(community_id)
        viewer = principal.user_id if principal else None
        shown = []
        for i in items:
            where, author = str(i["community_id"]), str(i["author_id"])
            privileged = author == viewer or where in moderated
            hidden = bool(i.get("removed")) or author in shadowed.get(where, {})
            shown.append(where in readable and (privileged or not hidden))
        return shown
