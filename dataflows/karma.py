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

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink
from redis import Redis

from dataflows.common import Event, SourceItem, events_of, read
from dataflows.guard import Guard, Traced
from dataflows.sinks import ShardConnections
from dataflows.wakeups import Wake, WakeupWheel, file_or_keep, with_wakeups
from domain.karma import Karma, KarmaDelta, TargetKarma, contribution, replace_tally
from domain.lifecycle import evictable_at
from schemas.events import DeadLetter, ScoreChanged
from schemas.topics import SCORES
from stores.karma import drop_cached_karma, truncate_karma, upsert_karma
from stores.redis_store import PipelinedScript, karma_key, sync_client
from stores.settings import Settings

NAME = "karma"
TOPICS = [SCORES.name]
# Like ranking: scores arrive at most every SCORE_ANNOUNCE_MS per target, so 100 ms
# batches cost readers little and cut the activations to ten a second.
BATCH_INTERVAL_MS = 100


def score_changed(event: Event) -> ScoreChanged | None:
    return event.payload if isinstance(event.payload, ScoreChanged) else None


def by_target(score: Traced[ScoreChanged]) -> str:
    return score.value.target_id


@dataclass(frozen=True)
class Held:
    target_id: str
    karma: TargetKarma | None
    touched: datetime


class TargetFold:
    """A target's latest contribution; emits what changed for its author."""

    def __init__(
        self, state: Held | None, archive_after: timedelta, wheel: WakeupWheel | None = None
    ) -> None:
        self.state = state
        self.archive_after = archive_after
        self.wheel = wheel  # takes the far-off eviction time, if given
        self.deltas: list[KarmaDelta] = []

    def apply(self, s: ScoreChanged | Wake) -> None:
        if isinstance(s, Wake):
            # The wheel's wake-up: evict once due, as the timer would (see `notify_at`).
            if self.state is not None and self._evictable_at() <= datetime.now(UTC):
                self.state = None
            return
        held = self.state.karma if self.state else None
        value = contribution(s.score, s.author_vote)
        held, changed = replace_tally(held, s.author_id, s.target_type, s.seq, value)
        self.deltas += changed
        self.state = Held(s.target_id, held, datetime.now(UTC))

    def emit(self) -> Iterable[KarmaDelta]:
        out, self.deltas = self.deltas, []
        return out

    def notify_at(self) -> datetime | None:
        if self.state is None:
            return None
        return file_or_keep(self.wheel, self.state.target_id, self._evictable_at())

    def _evictable_at(self) -> datetime:
        assert self.state is not None
        return evictable_at(self.state.target_id, self.state.touched, self.archive_after)

    def on_notify(self) -> tuple[Iterable[KarmaDelta], bool]:
        return (), True  # voting closed: the contribution is final

    def snapshot(self) -> Held | None:
        return self.state  # frozen


def by_author(delta: Traced[KarmaDelta]) -> str:
    return delta.value.author_id


class AuthorFold:
    """An author's running karma; one absolute value out per batch."""

    def __init__(self, state: Karma | None) -> None:
        self.state = state
        self.changed = False

    def apply(self, delta: KarmaDelta) -> None:
        held = self.state or Karma(delta.author_id)
        self.state = held.add([delta])
        self.changed = True

    def emit(self) -> Iterable[Karma]:
        if not self.changed or self.state is None:
            return []
        self.changed = False
        return [self.state]

    def notify_at(self) -> datetime | None:
        return None

    def on_notify(self) -> tuple[Iterable[Karma], bool]:
        return (), False

    def snapshot(self) -> Karma | None:
        return self.state  # frozen


def latest_per_author(items: list[Karma]) -> list[Karma]:
    latest: dict[str, Karma] = {}
    for k in items:
        held = latest.get(k.user_id)
        if held is None or k.seq > held.seq:
            latest[k.user_id] = k
    return list(latest.values())


class KarmaWriter:
    """Identity database first (the record), then the Redis cache; both keep the newest."""

    def __init__(self, connections: ShardConnections, identity_db: str, redis: Redis) -> None:
        self.connections = connections
        self.identity_db = identity_db
        self.redis = redis
        self.set_if_newer = PipelinedScript(redis, "set_if_newer")

    async def _rows(self, rows: list[Karma]) -> None:
        conn = await self.connections.conn(self.identity_db)
        await upsert_karma(conn, ((k.user_id, k.post, k.comment, k.seq) for k in rows))

    def write(self, batch: list[Karma]) -> None:
        rows = latest_per_author(batch)
        self.connections.run(self._rows(rows))
        self.set_if_newer.run_all(
            ([karma_key(k.user_id)], [k.seq, "p", k.post, "c", k.comment]) for k in rows
        )

    def close(self) -> None:
        self.connections.close()
        self.redis.close()


@dataclass(frozen=True)
class Sinks:
    karma: Sink[Traced[Karma]]


def build_flow(
    source: Source[SourceItem],
    sinks: Sinks,
    dead_letters: Sink[DeadLetter],
    archive_after: timedelta = timedelta(days=180),
    wheel: WakeupWheel | None = None,
) -> Dataflow:
    """`wheel`: where far-off evictions go in a live run, its due keys coming in with
    the source's items (see `dataflows.wakeups`); without it they are Bytewax timers."""
    flow = Dataflow(NAME)
    guard = Guard(NAME)
    items = read(flow, source)
    scores = guard.map("score_changed", events_of(guard, items), score_changed)
    keyed = with_wakeups(op.key_on("by_target", scores, by_target), items, wheel)
    deltas = guard.stateful(
        "target", keyed, lambda resume: TargetFold(resume, archive_after, wheel)
    )
    karma = guard.stateful("author", op.key_on("by_author", deltas, by_author), AuthorFold)
    op.output("karma_out", karma, sinks.karma)
    guard.finish(dead_letters)
    return flow


def wipe(settings: Settings) -> None:
    """Empty the state this dataflow derives (for replay)."""
    truncate_karma(settings)
    redis = sync_client(settings.redis_url)
    drop_cached_karma(redis)
    redis.close()
