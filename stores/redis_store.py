"""Redis adapters: the live vote state (Lua, loaded once) and target markers.

Keys: `t:{target}` hash (c community, a author, k kind, up, dn, v, h hidden post),
`uv:{target}` hash (user -> direction; indexed by reader in stores/reader_votes.py) and
`uvu:{target}` hash (user -> version of a change whose event may not be on the log:
re-published on the user's next vote);
`karma:{user}` hash (p post, c comment, s seq);
`unread:{user}` unread notification count; pub/sub channel `inbox:{user}` carries a
user's pushes (notifications and unread counts) to whichever WebSocket server holds them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hiredis
import redis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError
from redis.typing import EncodableT

from domain.rate_limits import Charge, Verdict
from stores import rate_limits
from stores.coalesce import Coalescer
from stores.reader_votes import reader_votes_key
from stores.standing_versions import versions_key

LUA = Path(__file__).parent / "lua"


def target_key(target_id: str) -> str:
    return f"t:{target_id}"


def voters_key(target_id: str) -> str:
    return f"uv:{target_id}"


def unsettled_key(target_id: str) -> str:
    return f"uvu:{target_id}"


def karma_key(user_id: str) -> str:
    return f"karma:{user_id}"


def unread_key(user_id: str) -> str:
    return f"unread:{user_id}"


def inbox_channel(user_id: str) -> str:
    return f"inbox:{user_id}"


def script_source(name: str) -> str:
    return (LUA / f"{name}.lua").read_text()


class PipelinedScript:
    """An idempotent Lua script run for many keys in one pipelined round trip.

    redis-py's own scripts on a pipeline send SCRIPT EXISTS before every batch (a
    second round trip per sink write); this sends EVALSHA only, and on NOSCRIPT (a
    Redis restarted or flushed since) loads the script and runs the whole batch again,
    which is why the script must be idempotent."""

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.source = script_source(name)
        # the name Redis gives the script (EVALSHA), not a security hash
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    def run_all(self, calls: Iterable[tuple[Sequence[str], Sequence[str | int]]]) -> list[object]:
        queued = list(calls)
        if not queued:
            return []
        for attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            for keys, args in queued:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            try:
                return pipe.execute()
            except NoScriptError:
                if attempt:
                    raise
                self.client.script_load(self.source)
        raise AssertionError("unreachable")


class PackedConnection(aioredis.Connection):
    """redis-py's asyncio connection builds each command's bytes in Python, one
    argument at a time; its sync connection has hiredis do it in C. The API's batched
    calls carry hundreds of arguments (a batch of 32 votes: 643), which take about 340
    µs to pack in Python and 58 in C, the same bytes (`benchmarks/vote_script_cost.py`).
    What hiredis does not take (a bytearray, or a bool, which redis-py refuses too)
    goes the Python way."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        first, rest = args[0], args[1:]
        if isinstance(first, str):  # "SCRIPT LOAD" and the like: one word each
            words: tuple[EncodableT, ...] = tuple(first.encode().split())
        elif isinstance(first, bytes) and b" " in first:
            words = tuple(first.split())
        else:
            words = (first,)
        try:
            # hiredis' stub types its argument as a 1-tuple; it takes any length.
            return [hiredis.pack_command((*words, *rest))]  # type: ignore[arg-type]
        except TypeError:
            return super().pack_command(*args)


def async_client(url: str, max_connections: int = 64) -> aioredis.Redis:
    # A blocking pool waits for a free connection instead of failing under load.
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, connection_class=PackedConnection
    )
    return aioredis.Redis(connection_pool=pool)


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def delete_matching(client: redis.Redis, pattern: str, chunk: int = 500) -> None:
    """Delete every key matching `pattern` (build it with a key function and "*")."""
    keys = list(client.scan_iter(match=pattern, count=1000))
    for i in range(0, len(keys), chunk):
        client.delete(*keys[i : i + chunk])


# Target markers and live counts, for the dataflows and operator commands (sync clients).


def mark_target(
    pipe: redis.Redis, target_id: str, community_id: str, author_id: str, kind: str
) -> None:
    """Queue the marker that makes a post or comment votable (its community and author)."""
    pipe.hset(target_key(target_id), mapping={"c": community_id, "a": author_id, "k": kind})


def mark_hidden(pipe: redis.Redis, post_id: str, hidden: bool) -> None:
    """Queue the mark (`h` in `t:{post}`) that keeps a deleted or removed post out of
    home-feed pages frozen before it left the ranked sets."""
    if hidden:
        pipe.hset(target_key(post_id), "h", "1")
    else:
        pipe.hdel(target_key(post_id), "h")


def seed_live_counts(pipe: redis.Redis, target_id: str, upvotes: int, downvotes: int) -> None:
    """Queue live counts for a target that has none (the API's may be newer)."""
    pipe.hsetnx(target_key(target_id), "up", str(upvotes))
    pipe.hsetnx(target_key(target_id), "dn", str(downvotes))


def live_counts(client: redis.Redis, target_ids: list[str]) -> dict[str, tuple[int, int]]:
    """(upvotes, downvotes) of each target as Redis holds them now."""
    pipe = client.pipeline(transaction=False)
    for target_id in target_ids:
        pipe.hmget(target_key(target_id), ["up", "dn"])
    return {
        t: (int(up or 0), int(dn or 0))
        for t, (up, dn) in zip(target_ids, pipe.execute(), strict=True)
    }


def voters(client: redis.Redis, target_id: str) -> dict[str, int]:
    """Every user's current direction on the target."""
    raw: dict[bytes, bytes] = client.hgetall(voters_key(target_id))  # type: ignore[assignment]
    return {_text(user): int(direction) for user, direction in raw.items()}


def reset_live_scores(client: redis.Redis) -> None:
    """Zero every target's live counts and version, keeping its marker (before the votes
    dataflow replays its tallies)."""
    for key in client.scan_iter(match=target_key("*"), count=1000):
        client.hset(key, mapping={"up": 0, "dn": 0, "v": 0})


def clear_target_markers(client: redis.Redis) -> None:
    """Remove every target's marker, keeping its counts (before the content dataflow
    replays the posts and comments that set them)."""
    for key in client.scan_iter(match=target_key("*"), count=1000):
        client.hdel(key, "c", "a", "k")


@dataclass(frozen=True)
class VoteOutcome:
    # 1 changed, 2 re-asserted (last change unsettled), 0 unchanged, -1 unknown target,
    # -2 refused by a rate limit (nothing changed)
    status: int
    previous: int
    version: int
    upvotes: int
    downvotes: int
    community_id: str
    author_id: str
    limit: Verdict = field(default_factory=lambda: Verdict(True))

    @property
    def score(self) -> int:
        return self.upvotes - self.downvotes


CAST_ANSWER = 12  # entries in cast_vote.lua's answer
CAST_FAILED = -9  # a cast of many_casts_source() that raised: the error follows
Cast = tuple[list[str], list[str | int | float]]  # one cast_vote.lua call's keys and arguments


@dataclass(frozen=True)
class Ballot:
    """One vote for cast_vote.lua. With `hide_shadowed`, a target by an author
    shadow-banned in `community_id` (other than the voter) is unknown (-1), as it is to
    every reader but its author and the community's moderators. With a
    `standing_version` (see stores/standing_versions.py) other than '*', a voter whose
    standing changed since that version is answered -3 and nothing changes."""

    target_id: str
    user_id: str
    direction: int
    charges: Sequence[Charge] = ()
    community_id: str = ""
    hide_shadowed: bool = False
    standing_version: str = "*"

    def call(self) -> Cast:
        """The script's keys and arguments for this vote."""
        from stores.shadow import shadow_key  # stores.shadow builds on this module

        keys = [
            target_key(self.target_id),
            voters_key(self.target_id),
            unsettled_key(self.target_id),
            shadow_key(self.community_id),
            versions_key(self.community_id),
            reader_votes_key(self.user_id),
            *rate_limits.charge_keys(self.charges),
        ]
        args: list[str | int | float] = [
            self.user_id,
            self.direction,
            len(self.charges),
            "1" if self.hide_shadowed else "0",
            self.standing_version,
            self.target_id,
            *rate_limits.charge_args(self.charges),
        ]
        return keys, args


def many_casts_call(casts: Sequence[Cast]) -> Cast:
    """The keys and arguments of one `many_casts_source()` call carrying `casts`."""
    keys = [key for cast_keys, _ in casts for key in cast_keys]
    counts: list[str | int | float] = [
        len(casts),
        *(len(k) for k, _ in casts),
        *(len(a) for _, a in casts),
    ]
    return keys, [*counts, *(arg for _, cast_args in casts for arg in cast_args)]


def many_casts_source() -> str:
    """cast_vote.lua for several casts in one call (Redis runs them one after the
    other, as separate calls would). KEYS: every cast's keys in turn; ARGV[1] the
    number of casts n, ARGV[2..n+1] each cast's key count, ARGV[n+2..2n+1] each one's
    argument count, then every cast's arguments in turn. Returns the answers one after
    the other, CAST_ANSWER entries each; a cast that raised answers CAST_FAILED and the
    error (what it changed before raising stays, as with a call of its own)."""
    return f"""{rate_limits.bucket_chunk()}
local function cast_one(KEYS, ARGV)
{script_source("cast_vote")}
end
local n = tonumber(ARGV[1])
local out = {{}}
local k, a = 0, 1 + 2 * n
for i = 1, n do
  local nk, na = tonumber(ARGV[1 + i]), tonumber(ARGV[1 + n + i])
  local ok, answer = pcall(cast_one, {{unpack(KEYS, k + 1, k + nk)}},
    {{unpack(ARGV, a + 1, a + na)}})
  if not ok then
    answer = {{{CAST_FAILED}, type(answer) == 'table' and answer.err or tostring(answer)}}
  end
  for j = 1, {CAST_ANSWER} do
    local v = answer[j]
    if v == nil then v = false end
    out[#out + 1] = v
  end
  k, a = k + nk, a + na
end
return out
"""


class LiveVotes:
    """The API side: cast a vote atomically and read users' directions."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        # The vote takes the user's rate-limit buckets in its own call (no extra trip),
        # and concurrent requests' votes go to Redis together (`_cast_all`).
        self._cast = client.register_script(
            rate_limits.bucket_chunk() + "\n" + script_source("cast_vote")
        )
        self._cast_many = client.register_script(many_casts_source())
        self._casts: Coalescer[Cast, list[Any]] = Coalescer(self._cast_all)
        self._revert = client.register_script(script_source("revert_vote"))
        self._settle = client.register_script(script_source("settle_vote"))

    async def cast(self, ballot: Ballot) -> VoteOutcome:
        """Take the request's rate-limit buckets and record the vote, in one Lua call
        shared with concurrent requests' votes (see `Ballot` for what it checks)."""
        raw = await self._casts.call(ballot.call())
        status, prev, version, up, down, community, author = raw[:7]
        return VoteOutcome(
            int(status),
            int(prev),
            int(version),
            int(up),
            int(down),
            _text(community),
            _text(author),
            rate_limits.verdict_of(ballot.charges, raw[7:]),
        )

    async def _cast_all(self, casts: list[Cast]) -> list[list[Any] | Exception]:
        """Each cast's answer, from one call for them all; a cast that failed in Redis
        fails alone (the others' changes stand, and are answered)."""
        if len(casts) == 1:
            keys, args = casts[0]
            return [await self._cast(keys=keys, args=args)]
        keys, args = many_casts_call(casts)
        raw = await self._cast_many(keys=keys, args=args)
        answers: list[list[Any] | Exception] = []
        for at in range(0, len(raw), CAST_ANSWER):
            answer = raw[at : at + CAST_ANSWER]
            failed = answer[0] == CAST_FAILED
            answers.append(ResponseError(_text(answer[1])) if failed else answer)
        return answers

    async def revert(self, target_id: str, user_id: str, previous: int, version: int) -> bool:
        """Undo a change whose event is not on the log; when the target changed since,
        the user is marked unsettled instead."""
        done = await self._revert(
            keys=[
                target_key(target_id),
                voters_key(target_id),
                unsettled_key(target_id),
                reader_votes_key(user_id),
            ],
            args=[user_id, previous, version, target_id],
        )
        return bool(done)

    async def mark_unsettled(self, target_id: str, user_id: str, version: int) -> None:
        """The change with `version` may or may not reach the log."""
        await self._settle(keys=[unsettled_key(target_id)], args=[user_id, version, "mark"])

    async def delivered(self, target_id: str, user_id: str, version: int) -> None:
        """The user's change with `version` is on the log: earlier doubts are settled."""
        await self._settle(keys=[unsettled_key(target_id)], args=[user_id, version, "delivered"])

    async def directions(self, user_id: str, target_ids: list[str]) -> dict[str, int]:
        """The user's vote on each target, in one round trip."""
        if not target_ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for target_id in target_ids:
            pipe.hget(voters_key(target_id), user_id)
        values = await pipe.execute()
        return {t: int(v) if v is not None else 0 for t, v in zip(target_ids, values, strict=True)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
