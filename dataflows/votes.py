"""votes: vote events -> authoritative per-target tallies.

Writes each tally to the post's shard (`post_aggregates`, conditional on `seq`) or,
for a comment, to CQL (`comment_scores`, with `seq` as the write timestamp), to
the Redis live score (conditional on the API's version, see `reconcile_score.lua`)
and as a `score.changed` event on the scores topic.

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

from dataflows.common import Event, SourceItem, events
from dataflows.guard import Guard, Traced
from dataflows.sinks import ShardConnections
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


class TallyFold:
    """Applies votes to one target; emits at most one tally per batch."""

    def __init__(self, state: TargetState | None, archive_after: timedelta) -> None:
        self.state = state
        self.archive_after = archive_after
        self.changed = False

    def apply(self, vote: VoteCast | VoteExcluded) -> None:
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
        return [tally_out(self.state)]

    def notify_at(self) -> datetime | None:
        if self.state is None:
            return None
        touched = self.state.touched or datetime.now(UTC)
        return evictable_at(self.state.target_id, touched, self.archive_after)

    def on_notify(self) -> tuple[Iterable[TallyOut], bool]:
        # Voting has closed and nothing arrived for an hour: the tally is final.
        return (), True

    def finished(self) -> bool:
        return self.state is None

    def snapshot(self) -> TargetState | None:
        s = self.state
        if s is None:
            return None
        return TargetState(
            s.target_id, s.tally.copy(), s.target_type, s.community_id, s.author_id, s.touched
        )


def tally_out(s: TargetState) -> TallyOut:
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
) -> Dataflow:
    flow = Dataflow(NAME)
    guard = Guard(NAME)
    votes: Stream[Traced[VoteCast | VoteExcluded]] = guard.map(
        "vote_cast", events(guard, flow, source), vote_cast
    )
    tallies: Stream[Traced[TallyOut]] = guard.stateful(
        "tally",
        op.key_on("by_target", votes, by_target),
        lambda resume: TallyFold(resume, archive_after),
    )
    op.output("tallies_out", tallies, sinks.tallies)
    scores = guard.map_traced("score_event", tallies, score_message)
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
