"""karma: score changes -> post and comment karma per author.

Reads the votes dataflow's `score.changed` tallies. Per target it keeps the latest
(seq, contribution), where the contribution is the score minus the author's own vote
(self-votes earn nothing), and passes on only the change; per author it sums the
changes. Tallies are replaced by `seq`, so the duplicates a resumed votes dataflow
re-sends change nothing, and karma equals a recomputation from the vote log.

Writes absolute values with a per-author sequence to the identity database and the
Redis cache (`set_if_newer.lua`), so its sink is idempotent.

Target state is evicted like the votes dataflow's (archived and idle). A replay of
`votes` re-emits every tally: follow it with `replay karma`, since tallies of targets
already evicted here would otherwise count again.

`python -m dataflows run karma`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from dataflows.common import Event, kafka_events
from dataflows.sinks import FunctionSink, ShardConnections, execute_on_identity
from dataflows.votes import ARCHIVE_GRACE, IDLE_BEFORE_EVICTION
from domain.ids import created_at
from domain.karma import Karma, KarmaDelta, TargetKarma, contribution, replace_tally
from schemas.events import ScoreChanged
from schemas.topics import SCORES
from stores.karma import upsert_karma
from stores.redis_store import karma_key, script_source, sync_client
from stores.settings import Settings, get_settings

NAME = "karma"


def score_changed(event: Event) -> ScoreChanged | None:
    return event.payload if isinstance(event.payload, ScoreChanged) else None


def by_target(score: ScoreChanged) -> str:
    return score.target_id


@dataclass(frozen=True)
class Held:
    target_id: str
    karma: TargetKarma | None
    touched: datetime


class TargetLogic(op.StatefulBatchLogic[ScoreChanged, KarmaDelta, Held]):
    """A target's latest contribution; emits what changed for its author."""

    def __init__(self, state: Held | None, archive_after: timedelta) -> None:
        self.state = state
        self.archive_after = archive_after

    def on_batch(self, values: list[ScoreChanged]) -> tuple[Iterable[KarmaDelta], bool]:
        held = self.state.karma if self.state else None
        deltas: list[KarmaDelta] = []
        for s in values:
            value = contribution(s.score, s.author_vote)
            held, changed = replace_tally(held, s.author_id, s.target_type, s.seq, value)
            deltas += changed
        self.state = Held(values[0].target_id, held, datetime.now(UTC))
        return deltas, op.StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        if self.state is None:
            return None
        closes = created_at(self.state.target_id) + self.archive_after + ARCHIVE_GRACE
        return max(closes, self.state.touched + IDLE_BEFORE_EVICTION)

    def on_notify(self) -> tuple[Iterable[KarmaDelta], bool]:
        return (), op.StatefulBatchLogic.DISCARD  # voting closed: the contribution is final

    def snapshot(self) -> Held:
        assert self.state is not None
        return self.state  # frozen


def by_author(delta: KarmaDelta) -> str:
    return delta.author_id


class AuthorLogic(op.StatefulBatchLogic[KarmaDelta, Karma, Karma]):
    """An author's running karma; one absolute value out per batch."""

    def __init__(self, state: Karma | None) -> None:
        self.state = state

    def on_batch(self, values: list[KarmaDelta]) -> tuple[Iterable[Karma], bool]:
        held = self.state or Karma(values[0].author_id)
        self.state = held.add(values)
        return [self.state], op.StatefulBatchLogic.RETAIN

    def snapshot(self) -> Karma:
        assert self.state is not None
        return self.state  # frozen


def latest_per_author(items: list[tuple[str, Karma]]) -> list[Karma]:
    latest: dict[str, Karma] = {}
    for _key, k in items:
        held = latest.get(k.user_id)
        if held is None or k.seq > held.seq:
            latest[k.user_id] = k
    return list(latest.values())


def karma_sink(settings: Settings) -> FunctionSink[tuple[str, Karma]]:
    """Identity database first (the record), then the Redis cache; both keep the newest."""

    def factory() -> tuple[Callable[[list[tuple[str, Karma]]], None], Callable[[], None]]:
        connections = ShardConnections(settings)
        redis = sync_client(settings.redis_url)
        set_if_newer = redis.register_script(script_source("set_if_newer"))

        async def write_rows(rows: list[Karma]) -> None:
            conn = await connections.conn(settings.identity_db)
            await upsert_karma(conn, ((k.user_id, k.post, k.comment, k.seq) for k in rows))

        def write(batch: list[tuple[str, Karma]]) -> None:
            rows = latest_per_author(batch)
            connections.run(write_rows(rows))
            pipe = redis.pipeline(transaction=False)
            for k in rows:
                set_if_newer(
                    keys=[karma_key(k.user_id)],
                    args=[k.seq, "p", k.post, "c", k.comment],
                    client=pipe,
                )
            pipe.execute()

        def close() -> None:
            connections.close()
            redis.close()

        return write, close

    return FunctionSink(factory)


def build_flow(tail: bool = True, settings: Settings | None = None) -> Dataflow:
    settings = settings or get_settings()
    archive_after = timedelta(days=settings.vote_archive_days)
    flow = Dataflow(NAME)
    events = kafka_events(flow, NAME, settings.kafka_bootstrap, [SCORES.name], tail=tail)
    scores = op.key_on(
        "by_target", op.filter_map("score_changed", events, score_changed), by_target
    )
    deltas = op.stateful_batch("target", scores, lambda resume: TargetLogic(resume, archive_after))
    by_user = op.key_on("by_author", op.key_rm("unkey_target", deltas), by_author)
    karma = op.stateful_batch("author", by_user, AuthorLogic)
    op.output("karma_out", karma, karma_sink(settings))
    return flow


def wipe(settings: Settings) -> None:
    """Empty the state this dataflow derives (for replay)."""
    execute_on_identity(settings, "TRUNCATE karma")
    redis = sync_client(settings.redis_url)
    for key in redis.scan_iter(match="karma:*", count=1000):
        redis.delete(key)
    redis.close()
