"""Communities, memberships (with roles) and pinned posts (identity database).

A change others must learn about appends its event to the outbox in the same
transaction (no dual writes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.access import Standing
from domain.errors import Conflict, NotFound
from schemas.envelope import Envelope
from stores import moderation, outbox

COLUMNS = "community_id, name, description, visibility, creator_id, member_count, created_at, rules"


@dataclass(frozen=True)
class CommunityRow:
    community_id: str
    name: str
    description: str
    visibility: str
    creator_id: str
    member_count: int
    created_at: datetime
    rules: str = ""


class CommunityStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create_community(self, community: CommunityRow, event: Envelope) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    "INSERT INTO communities (community_id, name, description, visibility,"
                    " creator_id, member_count, created_at) VALUES ($1, $2, $3, $4, $5, 1, $6)",
                    community.community_id,
                    community.name,
                    community.description,
                    community.visibility,
                    community.creator_id,
                    community.created_at,
                )
            except asyncpg.UniqueViolationError:
                raise Conflict("community name is taken", {"field": "name"}) from None
            await conn.execute(
                "INSERT INTO memberships (community_id, user_id, role) VALUES ($1, $2, 'owner')",
                community.community_id,
                community.creator_id,
            )
            await outbox.append(conn, event)

    async def get_community(self, name: str) -> CommunityRow:
        row = await self.pool.fetchrow(
            f"SELECT {COLUMNS} FROM communities WHERE lower(name) = lower($1)", name
        )
        if row is None:
            raise NotFound("community not found", {"name": name})
        return CommunityRow(**dict(row))

    async def get_community_by_id(self, community_id: str) -> CommunityRow:
        row = await self.pool.fetchrow(
            f"SELECT {COLUMNS} FROM communities WHERE community_id = $1", community_id
        )
        if row is None:
            raise NotFound("community not found", {"community_id": community_id})
        return CommunityRow(**dict(row))

    async def search_communities(
        self, prefix: str, limit: int, user_id: str = ""
    ) -> list[CommunityRow]:
        """Communities whose name starts with `prefix`: public and restricted ones plus
        the private ones `user_id` belongs to."""
        rows = await self.pool.fetch(
            f"SELECT {COLUMNS} FROM communities WHERE lower(name) LIKE $1"
            " AND (visibility <> 'private' OR community_id IN"
            " (SELECT community_id FROM memberships WHERE user_id = $3))"
            " ORDER BY member_count DESC, name LIMIT $2",
            prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",
            limit,
            user_id,
        )
        return [CommunityRow(**dict(r)) for r in rows]

    async def reader_scope(self, user_id: str) -> tuple[list[str], list[str]]:
        """(private communities the user is a member of, communities the user moderates):
        what search may show the user beyond public and restricted communities."""
        rows = await self.pool.fetch(
            "SELECT m.community_id, m.role, c.visibility FROM memberships m"
            " JOIN communities c ON c.community_id = m.community_id"
            " WHERE m.user_id = $1"
            " AND (c.visibility = 'private' OR m.role IN ('moderator', 'owner'))",
            user_id,
        )
        private = [r["community_id"] for r in rows if r["visibility"] == "private"]
        moderated = [r["community_id"] for r in rows if r["role"] in ("moderator", "owner")]
        return private, moderated

    async def change_membership(
        self, community_id: str, user_id: str, join: bool, make_event: Callable[[int], Envelope]
    ) -> int:
        """Join or leave; returns the member count. `make_event(count) -> Envelope`.
        The last owner cannot leave (Conflict); leaving removes only the membership
        (an approval or a sanction stays)."""
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialise membership changes per community (the last-owner rule).
            await conn.execute(
                "SELECT 1 FROM communities WHERE community_id = $1 FOR UPDATE", community_id
            )
            if join:
                changed = await _add_member(conn, community_id, user_id)
            else:
                role = await conn.fetchval(
                    "SELECT role FROM memberships WHERE community_id = $1 AND user_id = $2",
                    community_id,
                    user_id,
                )
                if role == "owner":
                    owners = await conn.fetchval(
                        "SELECT count(*) FROM memberships WHERE community_id = $1"
                        " AND role = 'owner'",
                        community_id,
                    )
                    if owners <= 1:
                        raise Conflict(
                            "the last owner cannot leave", {"community_id": community_id}
                        )
                changed = (
                    await conn.execute(
                        "DELETE FROM memberships WHERE community_id = $1 AND user_id = $2",
                        community_id,
                        user_id,
                    )
                ).endswith(" 1")
            return await _count_change(conn, community_id, join, changed, make_event)

    async def request_to_join(self, community_id: str, user_id: str) -> bool:
        """Ask to join a private community; False when already a member."""
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(
                "SELECT 1 FROM memberships WHERE community_id = $1 AND user_id = $2",
                community_id,
                user_id,
            ):
                return False
            await conn.execute(
                "INSERT INTO join_requests (community_id, user_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                community_id,
                user_id,
            )
            return True

    async def join_requests(self, community_id: str, limit: int) -> list[dict[str, object]]:
        rows = await self.pool.fetch(
            "SELECT u.username, j.created_at FROM join_requests j"
            " JOIN users u ON u.user_id = j.user_id WHERE j.community_id = $1"
            " ORDER BY j.created_at, u.username LIMIT $2",
            community_id,
            limit,
        )
        return [dict(r) for r in rows]

    async def answer_join_request(
        self,
        community_id: str,
        user_id: str,
        approve: bool,
        make_event: Callable[[int], Envelope],
    ) -> int:
        """Approve (the user becomes a member) or deny a pending request; NotFound when
        there is none. Returns the member count."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT 1 FROM communities WHERE community_id = $1 FOR UPDATE", community_id
            )
            deleted = await conn.execute(
                "DELETE FROM join_requests WHERE community_id = $1 AND user_id = $2",
                community_id,
                user_id,
            )
            if not deleted.endswith(" 1"):
                raise NotFound("no pending join request", {"user_id": user_id})
            changed = await _add_member(conn, community_id, user_id) if approve else False
            return await _count_change(conn, community_id, True, changed, make_event)

    async def approve_user(self, community_id: str, user_id: str, actor_id: str) -> None:
        await self.pool.execute(
            "INSERT INTO approved_users (community_id, user_id, approved_by) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            community_id,
            user_id,
            actor_id,
        )

    async def moderators(self, community_id: str) -> list[dict[str, object]]:
        rows = await self.pool.fetch(
            "SELECT u.username, m.role FROM memberships m JOIN users u ON u.user_id = m.user_id"
            " WHERE m.community_id = $1 AND m.role IN ('owner', 'moderator')"
            " ORDER BY m.role DESC, m.joined_at, u.username",
            community_id,
        )
        return [dict(r) for r in rows]

    async def set_moderator(
        self,
        community_id: str,
        user_id: str,
        moderator: bool,
        make_event: Callable[[int], Envelope],
    ) -> None:
        """Make a user a moderator (joining them if needed) or a plain member again.
        Owners keep their role (Conflict)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT 1 FROM communities WHERE community_id = $1 FOR UPDATE", community_id
            )
            role = await conn.fetchval(
                "SELECT role FROM memberships WHERE community_id = $1 AND user_id = $2",
                community_id,
                user_id,
            )
            if role == "owner":
                raise Conflict("an owner's role cannot change here", {"user_id": user_id})
            if not moderator:
                if role != "moderator":
                    raise NotFound("not a moderator", {"user_id": user_id})
                await conn.execute(
                    "UPDATE memberships SET role = 'member' WHERE community_id = $1"
                    " AND user_id = $2",
                    community_id,
                    user_id,
                )
                return
            changed = await _add_member(conn, community_id, user_id)
            await conn.execute(
                "UPDATE memberships SET role = 'moderator' WHERE community_id = $1"
                " AND user_id = $2",
                community_id,
                user_id,
            )
            await conn.execute(
                "DELETE FROM join_requests WHERE community_id = $1 AND user_id = $2",
                community_id,
                user_id,
            )
            await _count_change(conn, community_id, True, changed, make_event)

    async def update_community(
        self,
        community_id: str,
        description: str | None,
        rules: str | None,
        visibility: str | None,
        make_event: Callable[[CommunityRow], Envelope],
    ) -> CommunityRow:
        """Change the given settings; the event carries the whole new state."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE communities SET description = coalesce($2, description),"
                " rules = coalesce($3, rules), visibility = coalesce($4, visibility)"
                f" WHERE community_id = $1 RETURNING {COLUMNS}",
                community_id,
                description,
                rules,
                visibility,
            )
            if row is None:
                raise NotFound("community not found", {"community_id": community_id})
            community = CommunityRow(**dict(row))
            await outbox.append(conn, make_event(community))
            return community

    async def standing(self, community_id: str, user_id: str | None) -> Standing:
        """The user's role, approval, pending request and sanctions in force, now."""
        if user_id is None:
            return Standing()
        # One statement, one round trip: a voter's first vote in a community reads it.
        row = await self.pool.fetchrow(
            "SELECT (SELECT role FROM memberships WHERE community_id = $1 AND user_id = $2)"
            " AS role, EXISTS (SELECT 1 FROM approved_users WHERE community_id = $1"
            " AND user_id = $2) AS approved, EXISTS (SELECT 1 FROM join_requests"
            " WHERE community_id = $1 AND user_id = $2) AS pending,"
            f" ARRAY (SELECT ROW(s.kind, s.until) FROM ({moderation.IN_FORCE}) s) AS sanctions",
            community_id,
            user_id,
        )
        sanctions: dict[str, datetime | None] = {kind: until for kind, until in row["sanctions"]}
        ban, mute = sanctions.get("ban"), sanctions.get("mute")
        return Standing(
            signed_in=True,
            role=row["role"],
            approved=bool(row["approved"]),
            pending=bool(row["pending"]),
            banned="ban" in sanctions,
            banned_until=ban,
            muted="mute" in sanctions,
            muted_until=mute,
            shadow_banned="shadow_ban" in sanctions,
            shadow_banned_until=sanctions.get("shadow_ban"),
        )

    async def private_community_ids(self, user_id: str | None) -> tuple[set[str], set[str]]:
        """(private communities, those of them `user_id` is a member of)."""
        rows = await self.pool.fetch(
            "SELECT c.community_id, m.user_id IS NOT NULL AS member FROM communities c"
            " LEFT JOIN memberships m ON m.community_id = c.community_id AND m.user_id = $1"
            " WHERE c.visibility = 'private'",
            user_id or "",
        )
        return {r["community_id"] for r in rows}, {r["community_id"] for r in rows if r["member"]}

    async def is_member(self, community_id: str, user_id: str) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT 1 FROM memberships WHERE community_id = $1 AND user_id = $2",
                community_id,
                user_id,
            )
        )

    async def subscribed_community_ids(self, user_id: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT community_id FROM memberships WHERE user_id = $1", user_id
        )
        return [r["community_id"] for r in rows]

    async def is_moderator(self, community_id: str, user_id: str) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT 1 FROM memberships WHERE community_id = $1 AND user_id = $2"
                " AND role IN ('moderator', 'owner')",
                community_id,
                user_id,
            )
        )

    async def set_pin(
        self,
        community_id: str,
        post_id: str,
        actor_id: str,
        pinned: bool,
        limit: int,
        make_event: Callable[[list[str]], Envelope],
    ) -> list[str]:
        """Pin or unpin; returns the community's pins (oldest first). Conflict when full."""
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialise pin changes per community so the limit holds under races.
            await conn.execute(
                "SELECT 1 FROM communities WHERE community_id = $1 FOR UPDATE", community_id
            )
            current = [
                r["post_id"]
                for r in await conn.fetch(
                    "SELECT post_id FROM community_pins WHERE community_id = $1"
                    " ORDER BY pinned_at, post_id",
                    community_id,
                )
            ]
            if pinned and post_id not in current:
                if len(current) >= limit:
                    raise Conflict(f"at most {limit} posts can be pinned", {"pinned": current})
                await conn.execute(
                    "INSERT INTO community_pins (community_id, post_id, pinned_by)"
                    " VALUES ($1, $2, $3)",
                    community_id,
                    post_id,
                    actor_id,
                )
                current.append(post_id)
            elif not pinned and post_id in current:
                await conn.execute(
                    "DELETE FROM community_pins WHERE community_id = $1 AND post_id = $2",
                    community_id,
                    post_id,
                )
                current.remove(post_id)
            else:
                return current
            await outbox.append(conn, make_event(current))
            return current


async def pins_by_community(conn: asyncpg.Connection) -> dict[str, list[str]]:
    """Every community's pinned posts, oldest pin first (for rebuilding the read model)."""
    pins: dict[str, list[str]] = {}
    for r in await conn.fetch(
        "SELECT community_id, post_id FROM community_pins ORDER BY pinned_at, post_id"
    ):
        pins.setdefault(r["community_id"], []).append(r["post_id"])
    return pins


async def _add_member(conn: asyncpg.Connection, community_id: str, user_id: str) -> bool:
    changed = await conn.execute(
        "INSERT INTO memberships (community_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        community_id,
        user_id,
    )
    return bool(changed.endswith(" 1"))


async def _count_change(
    conn: asyncpg.Connection,
    community_id: str,
    join: bool,
    changed: bool,
    make_event: Callable[[int], Envelope],
) -> int:
    delta = (1 if join else -1) if changed else 0
    count = await conn.fetchval(
        "UPDATE communities SET member_count = member_count + $2"
        " WHERE community_id = $1 RETURNING member_count",
        community_id,
        delta,
    )
    if delta:
        await outbox.append(conn, make_event(count))
    return int(count)


async def private_members(
    conn: asyncpg.Connection, community_ids: list[str]
) -> dict[str, set[str]]:
    """The members of each private community among `community_ids` (public and
    restricted ones are absent)."""
    rows = await conn.fetch(
        "SELECT c.community_id, m.user_id FROM communities c"
        " LEFT JOIN memberships m ON m.community_id = c.community_id"
        " WHERE c.community_id = ANY($1::text[]) AND c.visibility = 'private'",
        community_ids,
    )
    members: dict[str, set[str]] = {}
    for r in rows:
        found = members.setdefault(r["community_id"], set())
        if r["user_id"] is not None:
            found.add(r["user_id"])
    return members
