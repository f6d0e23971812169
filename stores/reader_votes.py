"""Each reader's votes, indexed by reader: `rv:{user}` hash (target -> direction).

The voters hashes `uv:{target}` (stores/redis_store.py) answer "who voted on this
post"; a page of 25 posts asked "how did this reader vote on each" of them, one hash
lookup per post inside Lua. The index answers that with one HMGET per reader. The vote
scripts (`lua/cast_vote.lua`, `lua/revert_vote.lua`) write both in the same call.

`rv:indexed` marks the index complete: `reindex` (run by `ops migrate`) builds it from
the voters hashes, atomically per batch, and sets the marker; until then the listing
functions (`lua/listings.lua`) keep reading the voters hashes. Running it again repairs
whatever processes of a release before the index wrote during a rolling upgrade.
"""

from __future__ import annotations

import redis

PREFIX = "rv:"
INDEXED = "rv:indexed"
BATCH = 200


def reader_votes_key(user_id: str) -> str:
    return f"{PREFIX}{user_id}"


def _keys(client: redis.Redis, prefix: str) -> list[bytes]:
    """Every key under `prefix` but the marker (one SCAN pass), as Redis spells them:
    bytes, so no key can fail to decode."""
    marker = INDEXED.encode()
    return [k for k in client.scan_iter(match=f"{prefix}*", count=1000) if k != marker]


def reindex(client: redis.Redis) -> int:
    """Copy every voters hash into the readers' index, drop index entries no voters hash
    holds, then mark the index complete. Idempotent; returns the entries changed."""
    from stores.redis_store import PipelinedScript, voters_key  # the vote scripts' module

    script = PipelinedScript(client, "index_reader_votes")
    voters_prefix = voters_key("")
    changed = 0
    for mode, prefix, other in (("copy", voters_prefix, PREFIX), ("prune", PREFIX, voters_prefix)):
        keys = _keys(client, prefix)
        cut = len(prefix.encode())
        for at in range(0, len(keys), BATCH):
            batch = keys[at : at + BATCH]
            ids = [k[cut:] for k in batch]
            (done,) = script.run_all([(batch, [mode, other, *ids])])  # type: ignore[list-item]
            changed += int(done)  # type: ignore[call-overload]
    client.set(INDEXED, "1")
    return changed


def is_indexed(client: redis.Redis) -> bool:
    return bool(client.exists(INDEXED))
