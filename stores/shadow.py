"""Redis read model of shadow-bans: `sb:{community}` is the set of users whose content
in that community only they and the moderators see. Written by the content dataflow
from `member.sanctioned` (the Postgres `sanctions` table is the source of truth, see
`stores.moderation`); read inside the listing functions (`lua/listings.lua`) and the
vote script (`lua/cast_vote.lua`).
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from stores.redis_store import delete_matching


def shadow_key(community_id: str) -> str:
    return f"sb:{community_id}"


def author_counts_key(post_id: str) -> str:
    """`ca:{post}`: the post's comments per author (written by the content dataflow, a
    value never goes down), to leave shadow-banned authors' comments out of counts."""
    return f"ca:{post_id}"


def apply(pipe: redis.Redis, community_id: str, user_id: str, banned: bool) -> None:
    if banned:
        pipe.sadd(shadow_key(community_id), user_id)
    else:
        pipe.srem(shadow_key(community_id), user_id)


def wipe(client: redis.Redis) -> None:
    delete_matching(client, shadow_key("*"))
    delete_matching(client, author_counts_key("*"))


async def hidden_comment_count(
    client: aioredis.Redis, community_id: str, post_id: str, viewer_id: str
) -> int:
    """How many of the post's comments are by authors shadow-banned in its community
    (other than `viewer_id`): left out of the count the viewer sees."""
    members = await client.smembers(shadow_key(community_id))  # type: ignore[misc]
    others = [m for m in members if (m.decode() if isinstance(m, bytes) else m) != viewer_id]
    if not others:
        return 0
    counts = await client.hmget(author_counts_key(post_id), others)  # type: ignore[misc]
    return sum(int(c) for c in counts if c is not None)
