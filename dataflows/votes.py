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

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.dataflow import Dataflow

from dataflows.common import Event, kafka_events, kafka_output
from dataflows.sinks import FunctionSink, ShardConnections, execute_on_shards
from domain.errors import NotFound
from domain.ids import created_at, post_of_comment
from domain.votes import Tally
from schemas.envelope import encode, new_event
from schemas.events import ScoreChanged, VoteCast
from schemas.topics import SCORES, VOTES
from stores import cql
from stores.comments import SCORE_TABLES, CommentWriter
from stores.posts import upsert_aggregates
from stores.redis_store import script_source, sync_client, target_key
from stores.settings import Settings, get_settings

NAME = "votes"
ARCHIVE_GRACE = timedelta(days=1)
IDLE_BEFORE_EVICTION = timedelta(hours=1)


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


def vote_cast(event: Event) -> VoteCast | None:
    return event.payload if isinstance(event.payload, VoteCast) else None


def by_target(vote: VoteCast) -> str:
    return vote.target_id


@dataclass
class TargetState:
    target_id: str
    tally: Tally
    target_type: str = "post"
    community_id: str = ""
    author_id: str = ""
    touched: datetime | None = None


class TallyLogic(op.StatefulBatchLogic[VoteCast, TallyOut, TargetState]):
    """Applies a batch of votes to one target; emits at most one tally per batch."""

    def __init__(self, state: TargetState | None, archive_after: timedelta) -> None:
        self.state = state
        self.archive_after = archive_after

    def on_batch(self, values: list[VoteCast]) -> tuple[Iterable[TallyOut], bool]:
        if self.state is None:
            self.state = TargetState(values[0].target_id, Tally())
        state = self.state
        changed = False
        for vote in values:
            state.target_type = vote.target_type
            state.community_id = vote.community_id
            state.author_id = vote.author_id
            changed |= state.tally.apply(vote.user_id, vote.direction, vote.version)
        state.touched = datetime.now(UTC)
        return ([tally_out(state)] if changed else []), op.StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        if self.state is None:
            return None
        touched = self.state.touched or datetime.now(UTC)
        closes = created_at(self.state.target_id) + self.archive_after + ARCHIVE_GRACE
        return max(closes, touched + IDLE_BEFORE_EVICTION)

    def on_notify(self) -> tuple[Iterable[TallyOut], bool]:
        # Voting has closed and nothing arrived for an hour: the tally is final.
        return (), op.StatefulBatchLogic.DISCARD

    def snapshot(self) -> TargetState:
        s = self.state
        assert s is not None
        tally = Tally(
            s.tally.upvotes,
            s.tally.downvotes,
            s.tally.seq,
            s.tally.max_version,
            dict(s.tally.voters),
        )
        return TargetState(
            s.target_id, tally, s.target_type, s.community_id, s.author_id, s.touched
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


def latest_per_target(items: list[tuple[str, TallyOut]]) -> list[TallyOut]:
    """Within one sink batch only the newest tally of a target matters."""
    latest: dict[str, TallyOut] = {}
    for _key, out in items:
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


def tally_sink(settings: Settings) -> FunctionSink[tuple[str, TallyOut]]:
    """Post tallies into their shard and comment tallies into CQL (both idempotent on
    seq), then the Redis live score."""

    def factory() -> tuple[Callable[[list[tuple[str, TallyOut]]], None], Callable[[], None]]:
        shards = ShardConnections(settings)
        cluster, session = cql.connect(settings)
        comment_writer = CommentWriter(session)
        redis = sync_client(settings.redis_url)
        reconcile = redis.register_script(script_source("reconcile_score"))

        async def write_rows(posts: list[TallyOut]) -> None:
            for shard, items in shards.group_by_shard(posts, lambda t: t.community_id).items():
                conn = await shards.conn(shard)
                await upsert_aggregates(conn, (aggregate_row(t) for t in items))

        def write(batch: list[tuple[str, TallyOut]]) -> None:
            tallies = latest_per_target(batch)
            posts = [t for t in tallies if t.target_type == "post"]
            if posts:
                shards.run(write_rows(posts))
            comments = [comment_score_row(t) for t in tallies if t.target_type == "comment"]
            comment_writer.write_scores(row for row in comments if row is not None)
            pipe = redis.pipeline(transaction=False)
            for t in tallies:
                reconcile(
                    keys=[target_key(t.target_id)],
                    args=[t.upvotes, t.downvotes, t.version, t.community_id, t.author_id],
                    client=pipe,
                )
            pipe.execute()

        def close() -> None:
            shards.close()
            cluster.shutdown()
            redis.close()

        return write, close

    return FunctionSink(factory)


def score_message(item: tuple[str, TallyOut]) -> KafkaSinkMessage[bytes, bytes]:
    key, t = item
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
    return KafkaSinkMessage(key=key.encode(), value=encode(new_event(payload, key=key)))


def build_flow(tail: bool = True, settings: Settings | None = None) -> Dataflow:
    settings = settings or get_settings()
    archive_after = timedelta(days=settings.vote_archive_days)
    flow = Dataflow(NAME)
    events = kafka_events(flow, NAME, settings.kafka_bootstrap, [VOTES.name], tail=tail)
    votes = op.filter_map("vote_cast", events, vote_cast)
    keyed = op.key_on("by_target", votes, by_target)
    tallies = op.stateful_batch("tally", keyed, lambda resume: TallyLogic(resume, archive_after))
    op.output("tallies_out", tallies, tally_sink(settings))
    scores = op.map("score_event", tallies, score_message)
    kafka_output(scores, "scores_out", settings.kafka_bootstrap, SCORES.name)
    return flow


def wipe(settings: Settings) -> None:
    """Empty the state this dataflow derives (for replay)."""
    execute_on_shards(settings, "TRUNCATE post_aggregates")
    cql.truncate(settings, SCORE_TABLES)
    redis = sync_client(settings.redis_url)
    for key in redis.scan_iter(match="t:*", count=1000):
        redis.hset(key, mapping={"up": 0, "dn": 0, "v": 0})
    redis.close()
