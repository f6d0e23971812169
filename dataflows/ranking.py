"""ranking: posts + scores -> per-community ranked sets in Redis and rank columns in
the post's shard; pins from the communities topic.

Hot, new and controversial change only when a score does. Rising decays with age
and top/controversial windows expire with it, so each post's state also asks the
clock to wake it: at its next window exit (it leaves `top&t=hour` exactly an hour
after creation, with no vote needed) and, while its rising decays, as often as that
moves it (`domain.ranking.rerank_every`: every RISING_CADENCE per whole hour of age).
In a live run every wake goes to the flow's wake-up wheel (`dataflows.wakeups`), a
second at most late, so Bytewax holds no timer per post: it would walk them all on
every batch, and a day's posts are all young.

`python -m dataflows run ranking`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import orjson
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink
from redis import Redis
from redis.client import Pipeline

from dataflows.common import Event, SourceItem, events_of, read
from dataflows.guard import Guard, Traced
from dataflows.sinks import ShardConnections
from dataflows.wakeups import Wake, WakeupWheel, file_or_keep, with_wakeups
from domain import ranking
from domain.ids import created_at
from schemas.events import (
    ContentModerated,
    DeadLetter,
    PostCreated,
    PostDeleted,
    PostPinned,
    ScoreChanged,
)
from schemas.topics import COMMUNITIES, MODERATION, POSTS, SCORES
from stores import rankings
from stores.posts import delete_ranks, truncate_ranks, upsert_ranks
from stores.rankings import SET_LIMIT, load_library, pins_key, rank_key, write_pipelined
from stores.redis_store import mark_hidden, sync_client
from stores.settings import Settings

NAME = "ranking"
TOPICS = [POSTS.name, SCORES.name, COMMUNITIES.name, MODERATION.name]
# Scores arrive at most every SCORE_ANNOUNCE_MS per post anyway; 100 ms batches cut the
# flow's activations (each a pass over every post's timer) to ten a second.
BATCH_INTERVAL_MS = 100
RISING_CADENCE = timedelta(seconds=60)
RERANK_PHASES = 6  # young posts re-rank in this many groups per re-rank interval
WHEEL_SLOT = 1.0  # seconds: how late a wake (a window exit, a re-rank) may come


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PostSeen:
    post_id: str
    community_id: str
    created: datetime


@dataclass(frozen=True)
class ScoreSeen:
    post_id: str
    community_id: str
    upvotes: int
    downvotes: int
    seq: int


@dataclass(frozen=True)
class Hide:
    """A post leaves (or, approved again, rejoins) every ranked set: deleted by its
    author (for good) or removed by a moderator (until approved)."""

    post_id: str
    community_id: str
    deleted: bool = False
    removed: bool | None = None  # None: unchanged


@dataclass(frozen=True)
class RankUpdate:
    post_id: str
    community_id: str
    created: datetime
    upvotes: int
    downvotes: int
    hot: float
    rising: float | None
    controversy: float
    windows_in: tuple[str, ...]
    windows_out: tuple[str, ...]
    rank_seq: int  # the tally's seq: equal seqs are clock refreshes, both valid
    hidden: bool = False  # out of every set (deleted or removed)

    @property
    def score(self) -> int:
        return self.upvotes - self.downvotes


@dataclass
class PostState:
    post_id: str
    community_id: str
    created: datetime
    upvotes: int = 0
    downvotes: int = 0
    score_seq: int = 0
    windows: tuple[str, ...] = field(default_factory=tuple)
    deleted: bool = False
    removed: bool = False

    @property
    def hidden(self) -> bool:
        return self.deleted or self.removed

    @property
    def score(self) -> int:
        return self.upvotes - self.downvotes


RankInput = PostSeen | ScoreSeen | Hide


def ranking_input(event: Event) -> RankInput | None:
    p = event.payload
    if isinstance(p, PostCreated):
        return PostSeen(p.post_id, p.community_id, p.created_at)
    if isinstance(p, PostDeleted):
        return Hide(p.post_id, p.community_id, deleted=True)
    if isinstance(p, ContentModerated) and p.target_type == "post":
        return Hide(p.post_id, p.community_id, removed=p.action == "remove")
    if isinstance(p, ScoreChanged) and p.target_type == "post":
        return ScoreSeen(p.target_id, p.community_id, p.upvotes, p.downvotes, p.seq)
    return None


def by_post(item: Traced[RankInput]) -> str:
    return item.value.post_id


def pins_input(event: Event) -> PostPinned | None:
    return event.payload if isinstance(event.payload, PostPinned) else None


class RankFold:
    def __init__(self, state: PostState | None, wheel: WakeupWheel | None = None) -> None:
        self.state = state
        self.wheel = wheel  # takes every wake (exits, re-ranks), if given
        self.pending: list[RankUpdate] = []

    def emit(self) -> Iterable[RankUpdate]:
        out, self.pending = self.pending, []
        return out

    def apply(self, value: RankInput | Wake) -> None:
        if isinstance(value, Wake):
            self._woken()
            return
        if self.state is None:
            created = value.created if isinstance(value, PostSeen) else created_at(value.post_id)
            self.state = PostState(value.post_id, value.community_id, created)
        state = self.state
        if isinstance(value, Hide):
            was = state.hidden
            state.deleted = state.deleted or value.deleted
            if value.removed is not None:
                state.removed = value.removed
            if state.hidden != was or state.hidden:
                self.pending.append(self._update())
            return
        if isinstance(value, PostSeen):
            state.created = value.created  # the event's own time wins over the id's
        elif value.seq > state.score_seq:
            state.upvotes, state.downvotes, state.score_seq = (
                value.upvotes,
                value.downvotes,
                value.seq,
            )
        else:
            return  # an older tally: nothing changes
        self.pending.append(self._update())

    def on_notify(self) -> tuple[Iterable[RankUpdate], bool]:
        if self.state is None:
            return (), True
        if self.state.hidden:
            return (), self.state.deleted  # a deleted post never comes back
        update = self._update()
        return [update], settled(update)

    def _woken(self) -> None:
        """The wheel's wake-up: what the timer does (`on_notify`), once the post has left
        a window or its rising has decayed. A wake-up with neither due changes nothing;
        `notify_at` files it again."""
        s = self.state
        if s is not None and not s.hidden and not self._due(now()):
            return
        updates, done = self.on_notify()
        self.pending.extend(updates)
        if done:
            self.state = None

    def _due(self, current: datetime) -> bool:
        s = self.state
        assert s is not None
        if ranking.rerank_every(s.score, s.created, current, RISING_CADENCE) is not None:
            return True
        return tuple(ranking.windows_containing(s.created, current)) != s.windows

    def notify_at(self) -> datetime | None:
        if self.state is None or self.state.hidden:
            return None
        s, current = self.state, now()
        wakes = [ranking.next_window_exit(s.created, current)]
        every = ranking.rerank_every(s.score, s.created, current, RISING_CADENCE)
        if every is not None:
            wakes.append(ranking.next_rerank(s.post_id, current, every, RERANK_PHASES))
        upcoming = [w for w in wakes if w is not None]
        due = min(upcoming) if upcoming else None
        return file_or_keep(self.wheel, s.post_id, due, far=timedelta(0))

    def _update(self) -> RankUpdate:
        s = self.state
        assert s is not None
        current = now()
        score = s.score
        windows = tuple(ranking.windows_containing(s.created, current))
        young = current - s.created < ranking.RISING_MAX_AGE
        update = RankUpdate(
            post_id=s.post_id,
            community_id=s.community_id,
            created=s.created,
            upvotes=s.upvotes,
            downvotes=s.downvotes,
            hot=ranking.hot(score, s.created),
            rising=ranking.rising(score, s.created, current) if young else None,
            controversy=ranking.controversy(s.upvotes, s.downvotes),
            windows_in=windows,
            windows_out=tuple(w for w in s.windows if w not in windows),
            rank_seq=s.score_seq,
            hidden=s.hidden,
        )
        s.windows = () if s.hidden else windows
        return update

    def finished(self) -> bool:
        return self.state is None

    def snapshot(self) -> PostState | None:
        s = self.state
        if s is None:
            return None
        return PostState(
            s.post_id,
            s.community_id,
            s.created,
            s.upvotes,
            s.downvotes,
            s.score_seq,
            s.windows,
            s.deleted,
            s.removed,
        )


def settled(update: RankUpdate) -> bool:
    """Nothing left to expire or re-rank: the post only changes on votes now."""
    return update.rising is None and update.windows_in == ("all",)


def write_ranks(pipe: object, u: RankUpdate) -> None:
    """Queue the Redis writes for one update: one function call for every set the post
    is in (trimmed to SET_LIMIT when it joins one), removals for sets it left."""
    c = u.community_id
    mark_hidden(pipe, u.post_id, u.hidden)  # type: ignore[arg-type]
    if u.hidden:
        for key in every_rank_key(c):
            pipe.zrem(key, u.post_id)  # type: ignore[attr-defined]
        return
    writes: list[tuple[str, float]] = [
        (rank_key(c, "hot"), u.hot),
        (rank_key(c, "new"), u.created.timestamp()),
    ]
    if u.rising is not None:
        writes.append((rank_key(c, "rising"), u.rising))
    else:
        pipe.zrem(rank_key(c, "rising"), u.post_id)  # type: ignore[attr-defined]
    for window in u.windows_in:
        writes.append((rank_key(c, "top", window), float(u.score)))
        writes.append((rank_key(c, "controversial", window), u.controversy))
    for window in u.windows_out:
        pipe.zrem(rank_key(c, "top", window), u.post_id)  # type: ignore[attr-defined]
        pipe.zrem(rank_key(c, "controversial", window), u.post_id)  # type: ignore[attr-defined]
    keys = [key for key, _ in writes]
    scores = [repr(score) for _, score in writes]
    pipe.fcall("rank_write", len(keys), *keys, u.post_id, SET_LIMIT, *scores)  # type: ignore[attr-defined]


def every_rank_key(community_id: str) -> list[str]:
    keys = [rank_key(community_id, sort) for sort in ("hot", "new", "rising")]
    for window in ranking.WINDOWS:
        keys += [
            rank_key(community_id, "top", window),
            rank_key(community_id, "controversial", window),
        ]
    return keys


def rank_row(u: RankUpdate) -> tuple:
    return (
        u.post_id,
        u.community_id,
        u.created,
        u.score,
        u.upvotes,
        u.downvotes,
        u.hot,
        u.rising,
        u.controversy,
        u.rank_seq,
    )


class RankWriter:
    """The rank columns in the post's shard, then the ranked sets in Redis (a row the
    shard refuses never reaches a listing)."""

    def __init__(self, shards: ShardConnections, redis: Redis) -> None:
        self.shards = shards
        self.redis = redis
        load_library(redis)

    async def _rows(self, updates: list[RankUpdate]) -> None:
        for shard, items in self.shards.group_by_shard(updates, lambda u: u.community_id).items():
            conn = await self.shards.conn(shard)
            await upsert_ranks(conn, (rank_row(u) for u in items if not u.hidden))
            await delete_ranks(conn, [u.post_id for u in items if u.hidden])

    def write(self, batch: list[RankUpdate]) -> None:
        latest: dict[str, RankUpdate] = {}
        for update in batch:  # in order: the last update of a post wins
            latest[update.post_id] = update
        self.shards.run(self._rows(list(latest.values())))

        def queue(pipe: Pipeline) -> None:
            for update in latest.values():
                write_ranks(pipe, update)

        write_pipelined(self.redis, queue)

    def close(self) -> None:
        self.shards.close()
        self.redis.close()


class PinsWriter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def write(self, batch: list[PostPinned]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for pinned in batch:  # each event carries the full list: last one wins
            pipe.set(pins_key(pinned.community_id), orjson.dumps(pinned.pins))
        pipe.execute()

    def close(self) -> None:
        self.redis.close()


@dataclass(frozen=True)
class Sinks:
    ranks: Sink[Traced[RankUpdate]]
    pins: Sink[Traced[PostPinned]]


def build_flow(
    source: Source[SourceItem],
    sinks: Sinks,
    dead_letters: Sink[DeadLetter],
    wheel: WakeupWheel | None = None,
) -> Dataflow:
    """`wheel`: where every wake (window exits, re-ranks) goes in a live run, its due
    keys coming in with the source's items (see `dataflows.wakeups`); without it they
    are Bytewax timers."""
    flow = Dataflow(NAME)
    guard = Guard(NAME)
    items = read(flow, source)
    records = events_of(guard, items)
    inputs: Stream[Traced[RankInput]] = guard.map("rank_inputs", records, ranking_input)
    keyed = with_wakeups(op.key_on("by_post", inputs, by_post), items, wheel)
    updates = guard.stateful("rank", keyed, lambda resume: RankFold(resume, wheel))
    op.output("ranks_out", updates, sinks.ranks)
    op.output("pins_out", guard.map("pins", records, pins_input), sinks.pins)
    guard.finish(dead_letters)
    return flow


def wipe(settings: Settings) -> None:
    """Empty the state this dataflow derives (for replay)."""
    truncate_ranks(settings)
    redis = sync_client(settings.redis_url)
    rankings.wipe(redis)
    redis.close()
