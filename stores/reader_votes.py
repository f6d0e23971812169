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

from stores.redis_store import PipelinedScript, voters_key

PREFIX = "rv:"
INDEXED = "rv:indexed"
BATCH = 200


def reader_votes_key(user_id: str) -> str:
    return f"{PREFIX}{user_id}"


def _ids(client: redis.Redis, prefix: str) -> list[str]:
    """The ids of every key under `prefix` (one SCAN pass)."""
    return [
        key.decode()[len(prefix) :]
        for key in client.scan_iter(match=f"{prefix}*", count=1000)
        if key.decode() != INDEXED
    ]


def reindex(client: redis.Redis) -> int:
    """Copy every voters hash into the readers' index, drop index entries no voters hash
    holds, then mark the index complete. Idempotent; returns the entries changed."""
    script = PipelinedScript(client, "index_reader_votes")
    voters_prefix = voters_key("")
    changed = 0
    for mode, prefix, key_of, other in (
        ("copy", voters_prefix, voters_key, PREFIX),
        ("prune", PREFIX, reader_votes_key, voters_prefix),
    ):
        ids = _ids(client, prefix)
        for at in range(0, len(ids), BATCH):
            batch = ids[at : at + BATCH]
            (done,) = script.run_all([([key_of(i) for i in batch], [mode, other, *batch])])
            changed += int(done)  # type: ignore[call-overload]
    client.set(INDEXED, "1")
    return changed


def is_indexed(client: redis.Redis) -> bool:
    return bool(client.exists(INDEXED))
