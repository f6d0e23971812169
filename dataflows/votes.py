"""votes: vote events -> authoritative per-target tallies.

Writes each tally to the post's shard (`post_aggregates`, conditional on `seq`) or,
for a comment, to CQL (`comment_scores`, with `seq` as the write timestamp), to
the Redis live score (conditional on the API's version, see `reconcile_score.lua`)
and as a `score.changed` event on the scores topic.

A target's `score.changed` is announced at most once per `announce_every` (500 ms): its
first change at once, the changes after it coalesced into one announcement at the
interval's end (a timer, kept in the snapshot, so a crash cannot lose it; a bounded
run announces what is pending at its end). On a busy post that is one event for
ranking, karma and search instead of one per vote; the tally itself is written on
every change, so the API's counts are as fresh as before.

State per target holds every voter's latest (version, direction), so duplicates and
reordering cannot skew counts. It is bounded: votes close when a target is older
than the archive age (the API refuses them), and a target's state is evicted once it
is past that age plus a grace period and has been idle for an hour.

`python -m dataflows run votes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink
from cassandra.cluster import Cluster, Session
from redis import Redis

from dataflows.common import Event, SourceItem, events_of, read
from dataflows.guard import Guard, Traced
from dataflows.sinks import ShardConnections
from dataflows.wakeups import Wake, WakeupWheel, file_or_keep, with_wakeups
from domain.errors import NotFound
from domain.ids import post_of_comment
from domain.lifecycle import evictable_at
from domain.votes import Tally
from observability import tracing
from schemas.envelope import encode, new_event
from schemas.events import DeadLetter, ScoreChanged, VoteCast, VoteExcluded
from schemas.topics import VOTES
from stores import cql
from stores.comments import SCORE_TABLES, CommentWriter
from stores.posts import truncate_aggregates, upsert_aggregates
from stores.redis_store import PipelinedScript, reset_live_scores, sync_client, target_key
from stores.settings import Settings

NAME = "votes"
TOPICS = [VOTES.name]
# Votes are read in 20 ms batches: each activation is a pass over every key's Bytewax
# timer (few since evictions went to the wake-up wheel), and under load a batch carries
# dozens of votes. A tally waits 20 ms more at most.
BATCH_INTERVAL_MS = 20


@dataclass(frozen=True)
class TallyOut:
    target_id: str
    target_type: str
    community_id: str
    author_id: str
    upvotes: int
    downvotes: int
    seq: int
    version: int
    author_vote: int = 0  # the author's own vote, which karma leaves out
    announce: bool = True  # also goes out as `score.changed` (see `announce_every`)

    @property
    def score(self) -> int:
        return self.upvotes - self.downvotes


def vote_cast(event: Event) -> VoteCast | VoteExcluded | None:
    """Votes, and the exclusions of ring members' votes that the spam dataflow puts on
    the same topic (same key, so both apply in log order)."""
    payload = event.payload
    if isinstance(payload, VoteCast):
        return payload
    if isinstance(payload, VoteExcluded):
        return payload
    return None


def by_target(vote: Traced[VoteCast | VoteExcluded]) -> str:
    return vote.value.target_id


@dataclass
class TargetState:
    target_id: str
    tally: Tally
    target_type: str = "post"
    community_id: str = ""
    author_id: str = ""
    touched: datetime | None = None
    announced: datetime | None = None  # when its score last went out
    announce_due: datetime | None = None  # a change held back goes out then


class TallyFold:
    """Applies votes to one target; emits at most one tally per batch, and announces
    at most one per `announce_every`."""

    def __init__(
        self,
        state: TargetState | None,
        archive_after: timedelta,
        announce_every: timedelta = timedelta(0),
        wheel: WakeupWheel | None = None,
    ) -> None:
        self.state = state
        self.archive_after = archive_after
        self.announce_every = announce_every
        self.wheel = wheel  # takes the far-off eviction time, if given
        self.changed = False

    def apply(self, vote: VoteCast | VoteExcluded | Wake) -> None:
        if isinstance(vote, Wake):
            self._woken()
            return
        if self.state is None:
            self.state = TargetState(vote.target_id, Tally())
        state = self.state
        state.target_type = vote.target_type
        state.community_id = vote.community_id
        state.author_id = vote.author_id
        if isinstance(vote, VoteExcluded):
            self.changed |= state.tally.exclude(vote.user_id)
        else:
            self.changed |= state.tally.apply(vote.user_id, vote.direction, vote.version)
        state.touched = datetime.now(UTC)

    def emit(self) -> Iterable[TallyOut]:
        if not self.changed or self.state is None:
            return []
        self.changed = False
        s = self.state
        if s.announce_due is not None:  # a change is already held back: this joins it
            return [tally_out(s, announce=False)]
        now = datetime.now(UTC)
        if s.announced is not None and now - s.announced < self.announce_every:
            s.announce_due = s.announced + self.announce_every
            return [tally_out(s, announce=False)]
        s.announced = now
        return [tally_out(s)]

    def notify_at(self) -> datetime | None:
        if self.state is None:
            return None
        if self.state.announce_due is not None:
            return self.state.announce_due
        return file_or_keep(self.wheel, self.state.target_id, self._evictable_at())

    def _evictable_at(self) -> datetime:
        assert self.state is not None
        touched = self.state.touched or datetime.now(UTC)
        return evictable_at(self.state.target_id, touched, self.archive_after)

    def _woken(self) -> None:
        """The wheel's wake-up: what the eviction timer does, once it is due (a key
        woken early, or long gone, stays as it is; `notify_at` files it again)."""
        s = self.state
        if s is not None and s.announce_due is None and self._evictable_at() <= datetime.now(UTC):
            self.state = None

    def on_notify(self) -> tuple[Iterable[TallyOut], bool]:
        s = self.state
        if s is None:
            return (), True
        if s.announce_due is not None:
            return self._announce_held(), False
        # Voting has closed and nothing arrived for an hour: the tally is final.
        return (), True

    def on_eof(self) -> tuple[Iterable[TallyOut], bool]:
        """The end of a bounded run (a replay): a held-back change goes out now."""
        if self.state is None or self.state.announce_due is None:
            return (), False
        return self._announce_held(), False

    def _announce_held(self) -> list[TallyOut]:
        s = self.state
        assert s is not None
        s.announce_due = None
        s.announced = datetime.now(UTC)
        return [tally_out(s)]

    def finished(self) -> bool:
        return self.state is None

    def snapshot(self) -> TargetState | None:
        s = self.state
        if s is None:
            return None
        return TargetState(
            s.target_id,
            s.tally.copy(),
            s.target_type,
            s.community_id,
            s.author_id,
            s.touched,
            s.announced,
            s.announce_due,
        )


def tally_out(s: TargetState, announce: bool = True) -> TallyOut:
    return TallyOut(
        s.target_id,
        s.target_type,
        s.community_id,
        s.author_id,
        s.tally.upvotes,
        s.tally.downvotes,
        s.tally.seq,
        s.tally.max_version,
        s.tally.direction_of(s.author_id),
        announce,
    )


def latest_per_target(items: list[TallyOut]) -> list[TallyOut]:
    """Within one sink batch only the newest tally of a target matters."""
    latest: dict[str, TallyOut] = {}
    for out in items:
        held = latest.get(out.target_id)
        if held is None or out.seq > held.seq:
            latest[out.target_id] = out
    return list(latest.values())


def aggregate_row(t: TallyOut) -> tuple:
    return (t.target_id, t.community_id, t.upvotes, t.downvotes, t.score, t.seq)


def comment_score_row(t: TallyOut) -> tuple[str, str, int, int, int] | None:
    try:
        post_id = post_of_comment(t.target_id)
    except NotFound:
        return None  # not a comment id: there is no partition to put it in
    return (post_id, t.target_id, t.upvotes, t.downvotes, t.seq)


class TallyWriter:
    """Post tallies into their shard and comment tallies into CQL (both idempotent on
    seq), then the Redis live score."""

    def __init__(
        self, shards: ShardConnections, cluster: Cluster, session: Session, redis: Redis
    ) -> None:
        self.shards = shards
        self.cluster = cluster
        self.comments = CommentWriter(session)
        self.redis = redis
        self.reconcile = PipelinedScript(redis, "reconcile_score")

    async def _rows(self, posts: list[TallyOut]) -> None:
        for shard, items in self.shards.group_by_shard(posts, lambda t: t.community_id).items():
            conn = await self.shards.conn(shard)
            await upsert_aggregates(conn, (aggregate_row(t) for t in items))

    def write(self, batch: list[TallyOut]) -> None:
        tallies = latest_per_target(batch)
        posts = [t for t in tallies if t.target_type == "post"]
        if posts:
            self.shards.run(self._rows(posts))
        comments = [comment_score_row(t) for t in tallies if t.target_type == "comment"]
        self.comments.write_scores(row for row in comments if row is not None)
        self.reconcile.run_all(
            (
                [target_key(t.target_id)],
                [t.upvotes, t.downvotes, t.version, t.community_id, t.author_id],
            )
            for t in tallies
        )

    def close(self) -> None:
        self.shards.close()
        self.cluster.shutdown()
        self.redis.close()


def score_message(item: Traced[TallyOut]) -> KafkaSinkMessage[bytes, bytes]:
    """The tally as an event, carrying the trace of the vote it applied last."""
    t = item.value
    payload = ScoreChanged(
        target_id=t.target_id,
        target_type=t.target_type,  # type: ignore[arg-type]
        community_id=t.community_id,
        author_id=t.author_id,
        upvotes=t.upvotes,
        downvotes=t.downvotes,
        score=t.score,
        seq=t.seq,
        version=t.version,
        author_vote=t.author_vote,  # type: ignore[arg-type]
    )
    key = t.target_id
    parent = item.origin.traceparent
    return KafkaSinkMessage(
        key=key.encode(),
        value=encode(new_event(payload, key=key)),
        headers=[(tracing.TRACEPARENT, parent)] if parent else [],
    )


@dataclass(frozen=True)
class Sinks:
    tallies: Sink[Traced[TallyOut]]
    scores: Sink[Traced[KafkaSinkMessage[bytes, bytes]]]


def build_flow(
    source: Source[SourceItem],
    sinks: Sinks,
    dead_letters: Sink[DeadLetter],
    archive_after: timedelta = timedelta(days=180),
    announce_every: timedelta = timedelta(0),
    wheel: WakeupWheel | None = None,
) -> Dataflow:
    """`wheel`: where far-off evictions go in a live run, its due keys coming in with
    the source's items (see `dataflows.wakeups`); without it they are Bytewax timers."""
    flow = Dataflow(NAME)
    guard = Guard(NAME)
    items = read(flow, source)
    votes: Stream[Traced[VoteCast | VoteExcluded]] = guard.map(
        "vote_cast", events_of(guard, items), vote_cast
    )
    keyed = with_wakeups(op.key_on("by_target", votes, by_target), items, wheel)
    tallies: Stream[Traced[TallyOut]] = guard.stateful(
        "tally",
        keyed,
        lambda resume: TallyFold(resume, archive_after, announce_every, wheel),
    )
    op.output("tallies_out", tallies, sinks.tallies)
    announced = op.filter("announced", tallies, lambda t: t.value.announce)
    scores = guard.map_traced("score_event", announced, score_message)
    op.output("scores_out", scores, sinks.scores)
    guard.finish(dead_letters)
    return flow


def wipe(settings: Settings) -> None:
    """Empty the state this dataflow derives (for replay)."""
    truncate_aggregates(settings)
    cql.truncate(settings, SCORE_TABLES)
    redis = sync_client(settings.redis_url)
    reset_live_scores(redis)
    redis.close()
