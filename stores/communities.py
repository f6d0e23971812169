"""Communities, memberships (with roles) and pinned posts (identity database).

A change others must learn about appends its event to the outbox in the same
transaction (no dual writes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.errors import Conflict, NotFound
from schemas.envelope import Envelope
from stores import outbox


@dataclass(frozen=True)
class CommunityRow:
    community_id: str
    name: str
    description: str
    visibility: str
    creator_id: str
    member_count: int
    created_at: datetime


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
                "INSERT INTO memberships (community_id, user_id, role)"
                " VALUES ($1, $2, 'moderator')",
                community.community_id,
                community.creator_id,
            )
            await outbox.append(conn, event)

    async def get_community(self, name: str) -> CommunityRow:
        row = await self.pool.fetchrow(
            "SELECT community_id, name, description, visibility, creator_id, member_count,"
            " created_at FROM communities WHERE lower(name) = lower($1)",
            name,
        )
        if row is None:
            raise NotFound("community not found", {"name": name})
        return CommunityRow(**dict(row))

    async def search_communities(self, prefix: str, limit: int) -> list[CommunityRow]:
        rows = await self.pool.fetch(
            "SELECT community_id, name, description, visibility, creator_id, member_count,"
            " created_at FROM communities WHERE lower(name) LIKE $1 ORDER BY member_count DESC,"
            " name LIMIT $2",
            prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",
            limit,
        )
        return [CommunityRow(**dict(r)) for r in rows]

    async def change_membership(
        self, community_id: str, user_id: str, join: bool, make_event: Callable[[int], Envelope]
    ) -> int:
        """Join or leave; returns the member count. `make_event(count) -> Envelope`."""
        async with self.pool.acquire() as conn, conn.transaction():
            if join:
                changed = await conn.execute(
                    "INSERT INTO memberships (community_id, user_id) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    community_id,
                    user_id,
                )
            else:
                changed = await conn.execute(
                    "DELETE FROM memberships WHERE community_id = $1 AND user_id = $2",
                    community_id,
                    user_id,
                )
            delta = (1 if join else -1) if changed.endswith(" 1") else 0
            count = await conn.fetchval(
                "UPDATE communities SET member_count = member_count + $2"
                " WHERE community_id = $1 RETURNING member_count",
                community_id,
                delta,
            )
            if delta:
                await outbox.append(conn, make_event(count))
            return int(count)

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
                " AND role = 'moderator'",
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
