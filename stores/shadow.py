"""Redis read model of shadow-bans: `sb:{community}` is the set of users whose content
in that community only they and the moderators see. Written by the content dataflow
from `member.sanctioned` (the Postgres `sanctions` table is the source of truth, see
`stores.moderation`); read inside the listing functions (`lua/listings.lua`).
"""

from __future__ import annotations

import redis

from stores.redis_store import delete_matching


def shadow_key(community_id: str) -> str:
    return f"sb:{community_id}"


def apply(pipe: redis.Redis, community_id: str, user_id: str, banned: bool) -> None:
    if banned:
        pipe.sadd(shadow_key(community_id), user_id)
    else:
        pipe.srem(shadow_key(community_id), user_id)


def wipe(client: redis.Redis) -> None:
    delete_matching(client, shadow_key("*"))
