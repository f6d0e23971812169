"""spam: posts, comments, votes and moderation events -> behaviour flags, trust scores,
exclusions of ring members' votes and (configurable) automatic shadow-bans.

Signals (`domain/abuse.py`, windows in event time, so a replay finds the same):
- rapid posting, keyed by author: a sliding window of the author's posts;
- link spam, keyed by registrable domain: one author putting the same domain into
  many communities (posts and comments, markdown links and bare URLs);
- vote rings, in two keyed steps. `mutual`, keyed by the unordered pair (voter,
  author): each upvote touches exactly one pair, so this step, where every vote goes,
  spreads over any number of workers like the votes themselves; a pair whose two
  accounts each upvoted `mutual_targets` distinct items of the other within the window
  becomes one *mutual edge*. `rings`, one key: the graph of mutual edges only (orders
  of magnitude fewer than votes, each forgotten after `ring_edge_ttl`); a ring is a
  connected group of at least three accounts in which each is mutual with two others
  (the graph's 2-core). Ordinary users almost never upvote each other's content three
  times both ways; ring members do it by construction, camouflage votes or not.

Outputs
- flags (`abuse_flags`, with evidence), each flagged post or comment in its community's
  moderation queue (kind `spam`, with the evidence and the account's trust), and the
  trust score per account (`account_trust` and `trust:{user}`, `stores/abuse.py`); the
  score is never public.
- for every ring member, `vote.excluded` for each item they currently vote on (and
  every later vote), published on the votes topic keyed by target: the votes dataflow
  stops counting them in log order, so scores and karma drop the ring's votes and a
  replay of the votes topic gives the same tallies whatever the interleaving was.
- when `auto_shadow_ban` is on and an account's trust from its signals falls under
  `shadow_ban_below`: a shadow-ban (actor `system`) in each community its flagged
  content is in, through `stores.moderation.automatic_sanction`: the sanction row, the
  mod log entry and `member.sanctioned` on the moderation topic (by the outbox).

State per key is bounded: windows plus a cap of entries per key, and every key's
state is dropped once idle for its window (wall clock). `voter` keeps each account's
current votes of the last `voter_window` (at most `voter_cap`), which is what an
exclusion can reach back to.

`python -m dataflows run spam`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSinkMessage
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink
from redis import Redis

from dataflows.common import Event, SourceItem, events_of, read
from dataflows.guard import Guard, Traced, X
from dataflows.wakeups import Wake, WakeupWheel, file_or_keep, with_wakeups
from domain.abuse import (
    Flag,
    LinkSpread,
    MutualEdge,
    MutualVotes,
    PostRate,
    RingGraph,
    Thresholds,
    Upvote,
    pair_key,
    trust_score,
)
from domain.ids import created_at, new_id
from domain.spam import hosts_in, registrable_domain
from schemas.envelope import encode, new_event
from schemas.events import (
    CommentCreated,
    ContentModerated,
    DeadLetter,
    MemberSanctioned,
    PostCreated,
    VoteCast,
    VoteExcluded,
)
from schemas.topics import COMMENTS, MODERATION, POSTS, VOTES
from stores import abuse as store
from stores import moderation
from stores.karma import cached_karma
from stores.settings import Settings

NAME = "spam"
# Nobody waits on a flag: bigger, rarer batches spare the CPU of every vote (each
# activation of each stateful step is a pass over its keys' timers).
BATCH_INTERVAL_MS = 1000
# Its state is a week of every voter's votes, so its recovery store is the largest, and
# Bytewax's pass over that store at every epoch was a third of its CPU under load.
SNAPSHOT_SECONDS = 30
TOPICS = [POSTS.name, COMMENTS.name, VOTES.name, MODERATION.name]
SYSTEM_ACTOR = "system"


def _now() -> datetime:
    return datetime.now(UTC)


def vote_time(vote: VoteCast) -> datetime:
    """A vote's version is the API's Redis time in microseconds."""
    return datetime.fromtimestamp(vote.version / 1_000_000, UTC)


@dataclass(frozen=True)
class Authored:
    """A post or comment: who, when, where, and the text whose links count."""

    author_id: str
    at: datetime
    target_id: str
    target_type: str
    community_id: str
    texts: tuple[str, ...]


def authored(event: Event) -> Authored | None:
    p = event.payload
    if isinstance(p, PostCreated):
        texts = tuple(t for t in (p.title, p.body, p.url) if t)
        return Authored(p.author_id, p.created_at, p.post_id, "post", p.community_id, texts)
    if isinstance(p, CommentCreated):
        return Authored(
            p.author_id, p.created_at, p.comment_id, "comment", p.community_id, (p.body,)
        )
    return None


def vote_of(event: Event) -> VoteCast | None:
    return event.payload if isinstance(event.payload, VoteCast) else None


def removal_of(event: Event) -> str | None:
    p = event.payload
    if isinstance(p, ContentModerated) and p.action == "remove":
        return p.author_id
    return None


# -- rapid posting ------------------------------------------------------------------


class RapidFold:
    def __init__(self, state: PostRate | None, t: Thresholds) -> None:
        self.state = state or PostRate()
        self.t = t
        self.out: list[Flag] = []
        self.touched = _now()

    def apply(self, item: Authored) -> None:
        flag = self.state.add(item.author_id, item.at, item.target_id, item.community_id, self.t)
        self.touched = _now()
        if flag is not None:
            self.out.append(flag)

    def emit(self) -> Iterable[Flag]:
        out, self.out = self.out, []
        return out

    def notify_at(self) -> datetime | None:
        return self.touched + self.t.rapid_window * 2

    def on_notify(self) -> tuple[Iterable[Flag], bool]:
        return (), True

    def snapshot(self) -> PostRate | None:
        return self.state


# -- link spam ----------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    domain: str
    item: Authored


def links_of(item: Authored) -> list[Link]:
    domains = {registrable_domain(host) for host in hosts_in(*item.texts)}
    return [Link(d, item) for d in sorted(domains)]


class LinkFold:
    def __init__(self, state: LinkSpread | None, t: Thresholds) -> None:
        self.state = state or LinkSpread()
        self.t = t
        self.out: list[Flag] = []
        self.touched = _now()

    def apply(self, link: Link) -> None:
        i = link.item
        flag = self.state.add(link.domain, i.author_id, i.at, i.target_id, i.community_id, self.t)
        self.touched = _now()
        if flag is not None:
            flag.targets = [
                (tid, i.target_type if tid == i.target_id else kind, cid)
                for tid, kind, cid in flag.targets
            ]
            self.out.append(flag)

    def emit(self) -> Iterable[Flag]:
        out, self.out = self.out, []
        return out

    def notify_at(self) -> datetime | None:
        return self.touched + self.t.link_window

    def on_notify(self) -> tuple[Iterable[Flag], bool]:
        return (), True

    def snapshot(self) -> LinkSpread | None:
        return self.state


# -- vote rings ---------------------------------------------------------------------


def upvote_of(vote: VoteCast) -> Upvote | None:
    if vote.direction != 1 or vote.user_id == vote.author_id:
        return None
    return Upvote(
        vote.user_id,
        vote.author_id,
        vote.target_id,
        vote.target_type,
        vote.community_id,
        vote_time(vote),
    )


class MutualFold:
    """One pair's upvotes of each other; forgotten once idle for the window (a Bytewax
    timer, or with a wheel its wake-up: the pairs are many and far from due)."""

    def __init__(
        self, state: MutualVotes | None, t: Thresholds, wheel: WakeupWheel | None = None
    ) -> None:
        self.state = state or MutualVotes()
        self.t = t
        self.wheel = wheel
        self.out: list[MutualEdge] = []
        self.touched = _now()
        self.gone = False

    def apply(self, vote: Upvote | Wake) -> None:
        if isinstance(vote, Wake):
            # What the timer would do: forget a pair idle for the window (and a wake-up
            # for a pair long gone, which built this empty fold, leaves nothing). A vote
            # after it in the same batch starts the pair afresh.
            if not self.state.pair or _now() >= self.touched + self.t.mutual_window:
                self.state, self.gone = MutualVotes(), True
            return
        self.gone = False
        self.state.pair = self.state.pair or pair_key(vote.voter, vote.author)
        edge = self.state.add(vote, self.t)
        self.touched = _now()
        if edge is not None:
            self.out.append(edge)

    def emit(self) -> Iterable[MutualEdge]:
        out, self.out = self.out, []
        return out

    def notify_at(self) -> datetime | None:
        if self.gone:
            return None
        due = self.touched + self.t.mutual_window
        if not self.state.pair:  # a snapshot from before keys were kept: a timer
            return due
        return file_or_keep(self.wheel, PAIR_WAKES + self.state.pair, due)

    def on_notify(self) -> tuple[Iterable[MutualEdge], bool]:
        return (), True

    def snapshot(self) -> MutualVotes | None:
        return None if self.gone else self.state


class RingFold:
    def __init__(self, state: RingGraph | None, t: Thresholds) -> None:
        self.state = state or RingGraph()
        self.t = t
        self.out: list[Flag] = []

    def apply(self, edge: MutualEdge) -> None:
        self.out += self.state.add(edge, self.t)

    def emit(self) -> Iterable[Flag]:
        out, self.out = self.out, []
        return out

    def notify_at(self) -> datetime | None:
        return None  # edges lapse as newer ones arrive (`ring_edge_ttl`)

    def on_notify(self) -> tuple[Iterable[Flag], bool]:
        return (), False

    def snapshot(self) -> RingGraph | None:
        return self.state


# -- exclusions of ring members' votes ----------------------------------------------


@dataclass
class VoterState:
    # target id -> (type, community id, author id) of the voter's current non-zero votes
    votes: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    ring_id: str = ""
    voter: str = ""  # the key it is kept under; "" in snapshots made before it


class VoterFold:
    """A voter's current votes; once the voter is in a ring, an exclusion for each of
    them and for every later vote."""

    def __init__(
        self,
        state: VoterState | None,
        cap: int,
        window: timedelta,
        wheel: WakeupWheel | None = None,
    ) -> None:
        self.state = state or VoterState()
        self.cap = cap
        self.window = window
        self.wheel = wheel  # takes the far-off forgetting time, if given
        self.out: list[VoteExcluded] = []
        self.touched = _now()
        self.gone = False

    def apply(self, item: VoteCast | Flag | Wake) -> None:
        s = self.state
        if isinstance(item, Wake):
            # What the timer would do: forget a voter in no ring, idle for the window
            # (and a wake-up for a voter long gone leaves nothing). A vote after it in
            # the same batch starts the voter afresh.
            if not s.voter or (not s.ring_id and _now() >= self.touched + self.window):
                self.state, self.gone = VoterState(), True
            return
        self.gone = False
        s.voter = s.voter or item.user_id
        self.touched = _now()
        if isinstance(item, Flag):
            if s.ring_id:
                return
            s.ring_id = item.ring_id
            for target, held in s.votes.items():
                self.out.append(self._excluded(item.user_id, target, held, item.at))
            s.votes.clear()
            return
        held = (item.target_type, item.community_id, item.author_id)
        if s.ring_id:
            self.out.append(self._excluded(item.user_id, item.target_id, held, vote_time(item)))
            return
        s.votes.pop(item.target_id, None)
        if item.direction != 0:
            s.votes[item.target_id] = held
            while len(s.votes) > self.cap:
                del s.votes[next(iter(s.votes))]

    def _excluded(
        self, user_id: str, target_id: str, held: tuple[str, str, str], at: datetime
    ) -> VoteExcluded:
        kind, community_id, author_id = held
        return VoteExcluded(
            user_id=user_id,
            target_id=target_id,
            target_type=kind,  # type: ignore[arg-type]
            community_id=community_id,
            author_id=author_id,
            ring_id=self.state.ring_id,
            at=at,
        )

    def emit(self) -> Iterable[VoteExcluded]:
        out, self.out = self.out, []
        return out

    def notify_at(self) -> datetime | None:
        if self.gone or self.state.ring_id:
            return None
        due = self.touched + self.window
        if not self.state.voter:  # a snapshot from before keys were kept: a timer
            return due
        return file_or_keep(self.wheel, VOTER_WAKES + self.state.voter, due)

    def on_notify(self) -> tuple[Iterable[VoteExcluded], bool]:
        return (), True  # idle for the window: its votes are past what exclusion reaches

    def snapshot(self) -> VoterState | None:
        return None if self.gone else self.state


def voter_of(item: Traced[VoteCast | Flag]) -> str:
    return item.value.user_id


def exclusion_message(item: VoteExcluded) -> KafkaSinkMessage[bytes, bytes]:
    key = item.target_id
    return KafkaSinkMessage(key=key.encode(), value=encode(new_event(item, key=key)))


# -- trust and sanctions ------------------------------------------------------------


@dataclass
class AccountState:
    signals: dict[str, int] = field(default_factory=dict)
    removals: int = 0
    excluded: bool = False
    seq: int = 0
    communities: list[str] = field(default_factory=list)  # of flagged content
    banned_in: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrustUpdate:
    """An account's signals after a batch, with the flags and sanctions it brought."""

    user_id: str
    signals: dict[str, int]
    removals: int
    excluded: bool
    seq: int
    flags: tuple[Flag, ...] = ()
    sanctions: tuple[MemberSanctioned, ...] = ()


class AccountFold:
    def __init__(self, state: AccountState | None, t: Thresholds, auto_shadow_ban: bool) -> None:
        self.state = state or AccountState()
        self.t = t
        self.auto = auto_shadow_ban
        self.changed = False
        self.flags: list[Flag] = []
        self.sanctions: list[MemberSanctioned] = []
        self.user_id = ""

    def apply(self, item: Flag | str) -> None:
        s = self.state
        if isinstance(item, str):  # a removal of the account's content
            self.user_id = item
            s.removals += 1
        else:
            self.user_id = item.user_id
            self.flags.append(item)
            s.signals[item.signal] = s.signals.get(item.signal, 0) + 1
            s.excluded |= item.signal == "vote_ring"
            for _, _, community in item.targets:
                if community not in s.communities:
                    s.communities.append(community)
            self._maybe_ban(item)
        s.seq += 1
        self.changed = True

    def _maybe_ban(self, flag: Flag) -> None:
        s = self.state
        # The decision uses what the log holds (age and signals), so a replay decides
        # the same; karma only enters the stored score.
        score = trust_score(_now() - created_at(flag.user_id), 0, s.removals, s.signals, s.excluded)
        if not self.auto or score >= self.t.shadow_ban_below:
            return
        reason = f"automatic: {', '.join(sorted(s.signals))} (trust {score})"
        for community in s.communities:
            if community in s.banned_in:
                continue
            s.banned_in.append(community)
            self.sanctions.append(
                MemberSanctioned(
                    community_id=community,
                    user_id=flag.user_id,
                    kind="shadow_ban",
                    actor_id=SYSTEM_ACTOR,
                    reason=reason[:1000],
                    at=flag.at,
                )
            )

    def emit(self) -> Iterable[TrustUpdate]:
        if not self.changed:
            return []
        self.changed = False
        s = self.state
        sanctions, self.sanctions = tuple(self.sanctions), []
        flags, self.flags = tuple(self.flags), []
        return [
            TrustUpdate(
                self.user_id, dict(s.signals), s.removals, s.excluded, s.seq, flags, sanctions
            )
        ]

    def notify_at(self) -> datetime | None:
        return None

    def on_notify(self) -> tuple[Iterable[TrustUpdate], bool]:
        return (), False

    def snapshot(self) -> AccountState | None:
        return self.state


def account_of(item: Traced[Flag | str]) -> str:
    value = item.value
    return value if isinstance(value, str) else value.user_id


# -- sinks --------------------------------------------------------------------------


class _Identity:
    """One connection to the identity database, driven by a private loop (sinks are
    synchronous)."""

    def __init__(self, settings: Settings) -> None:
        self.dsn = settings.dsn(settings.identity_db)
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection | None = None

    async def get(self) -> asyncpg.Connection:
        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(self.dsn)
        return self.conn

    def close(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            self.loop.run_until_complete(self.conn.close())
        self.loop.close()


class AbuseWriter:
    """One identity-database transaction per batch: the trust rows (the stored score
    adds karma from the karma cache to the signals), the flag rows, each flagged post
    or comment into the moderation queue (kind `spam`, one item per target and signal,
    the evidence and the account's trust with it) and the automatic shadow-bans
    (through `stores.moderation`, whose outbox publishes `member.sanctioned`); then the
    Redis copy of the trust."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.db = _Identity(settings)
        self.redis = redis

    def write(self, batch: list[TrustUpdate]) -> None:
        latest: dict[str, TrustUpdate] = {}
        for u in batch:
            if u.user_id not in latest or latest[u.user_id].seq < u.seq:
                latest[u.user_id] = u
        karma = cached_karma(self.redis, list(latest))
        now = _now()
        rows = [
            store.TrustRow(
                u.user_id,
                trust_score(
                    now - created_at(u.user_id),
                    karma.get(u.user_id, 0),
                    u.removals,
                    u.signals,
                    u.excluded,
                ),
                u.signals,
                u.removals,
                u.excluded,
                u.seq,
            )
            for u in latest.values()
        ]
        trust = {r.user_id: r.score for r in rows}
        flags = [f for u in batch for f in u.flags]
        sanctions = [s for u in batch for s in u.sanctions]

        async def run() -> None:
            conn = await self.db.get()
            async with conn.transaction():
                await store.upsert_trust(conn, rows)
                await store.insert_flags(
                    conn,
                    (
                        store.FlagRow(f.user_id, f.signal, tid, kind, cid, f.evidence, f.at)
                        for f in flags
                        for tid, kind, cid in f.targets
                    ),
                )
                for f in flags:
                    for tid, kind, cid in f.targets:
                        await moderation.flag(conn, queue_item(f, tid, kind, cid, trust))
                for sanction in sanctions:
                    await moderation.automatic_sanction(
                        conn,
                        sanction.community_id,
                        sanction.user_id,
                        "shadow_ban",
                        sanction.reason,
                        None,
                        new_event(sanction, key=sanction.community_id),
                    )

        self.db.loop.run_until_complete(run())
        pipe = self.redis.pipeline(transaction=False)
        store.cache_trust(pipe, rows)
        pipe.execute()

    def close(self) -> None:
        self.db.close()
        self.redis.close()


def queue_item(
    flag: Flag, target_id: str, kind: str, community_id: str, trust: dict[str, float]
) -> moderation.QueueItem:
    evidence: dict[str, object] = {
        "signal": flag.signal,
        "user_id": flag.user_id,
        "detected_at": flag.at.isoformat(),
        **flag.evidence,
    }
    if flag.user_id in trust:
        evidence["trust"] = trust[flag.user_id]
    return moderation.QueueItem(
        item_id=new_id(),
        community_id=community_id,
        target_id=target_id,
        target_type=kind,  # type: ignore[arg-type]
        kind="spam",
        source_id=f"spam:{flag.signal}",
        reason=REASONS[flag.signal],
        evidence=evidence,
    )


REASONS = {
    "rapid_posting": "automatic: rapid posting",
    "link_spam": "automatic: the same link in many communities",
    "vote_ring": "automatic: vote ring",
}


@dataclass(frozen=True)
class Sinks:
    abuse: Sink[Traced[TrustUpdate]]  # trust, flags, queue items, sanctions (AbuseWriter)
    exclusions: Sink[Traced[KafkaSinkMessage[bytes, bytes]]]  # -> votes topic


@dataclass(frozen=True)
class Options:
    thresholds: Thresholds = field(default_factory=Thresholds)
    auto_shadow_ban: bool = True
    voter_cap: int = 1000
    voter_window: timedelta = timedelta(days=7)


def _flatten(step_id: str, stream: Stream[Traced[list[X]]]) -> Stream[Traced[X]]:
    return op.flat_map(step_id, stream, lambda t: [Traced(t.origin, v) for v in t.value])


# The wheel's keys of each step, told apart by prefix (`dataflows.wakeups.with_wakeups`).
PAIR_WAKES = "pair:"
VOTER_WAKES = "voter:"


def build_flow(
    source: Source[SourceItem],
    sinks: Sinks,
    dead_letters: Sink[DeadLetter],
    options: Options = Options(),
    wheel: WakeupWheel | None = None,
) -> Dataflow:
    """`wheel`: where the pairs' and voters' far-off forgetting times go in a live run,
    their due keys coming in with the source's items (see `dataflows.wakeups`); without
    it they are Bytewax timers."""
    t = options.thresholds
    flow = Dataflow(NAME)
    guard = Guard(NAME)
    items_in = read(flow, source)
    decoded = events_of(guard, items_in)
    items: Stream[Traced[Authored]] = guard.map("authored", decoded, authored)
    votes: Stream[Traced[VoteCast]] = guard.map("votes", decoded, vote_of)
    removals: Stream[Traced[str]] = guard.map("removals", decoded, removal_of)

    posts = op.filter("posts", items, lambda i: i.value.target_type == "post")
    rapid: Stream[Traced[Flag]] = guard.stateful(
        "rapid",
        op.key_on("by_author", posts, lambda i: i.value.author_id),
        lambda resume: RapidFold(resume, t),
    )
    links = _flatten("each_link", guard.map("links", items, links_of))
    spread: Stream[Traced[Flag]] = guard.stateful(
        "link_spread",
        op.key_on("by_domain", links, lambda i: i.value.domain),
        lambda resume: LinkFold(resume, t),
    )
    upvotes: Stream[Traced[Upvote]] = guard.map("upvotes", votes, upvote_of)
    pairs = op.key_on("by_pair", upvotes, lambda u: pair_key(u.value.voter, u.value.author))
    edges: Stream[Traced[MutualEdge]] = guard.stateful(
        "mutual",
        with_wakeups(pairs, items_in, wheel, PAIR_WAKES, "pair_woken"),
        lambda resume: MutualFold(resume, t, wheel),
    )
    rings: Stream[Traced[Flag]] = guard.stateful(
        "rings",
        op.key_on("one_graph", edges, lambda _e: "graph"),
        lambda resume: RingFold(resume, t),
    )
    voter_items: Stream[Traced[VoteCast | Flag]] = op.merge("voter_items", votes, rings)
    voters = op.key_on("by_voter", voter_items, voter_of)
    exclusions: Stream[Traced[VoteExcluded]] = guard.stateful(
        "voter",
        with_wakeups(voters, items_in, wheel, VOTER_WAKES, "voter_woken"),
        lambda resume: VoterFold(resume, options.voter_cap, options.voter_window, wheel),
    )
    op.output(
        "exclusions_out",
        guard.map("exclusion_event", exclusions, exclusion_message),
        sinks.exclusions,
    )

    flags: Stream[Traced[Flag]] = op.merge("flags", rapid, spread, rings)
    account_items: Stream[Traced[Flag | str]] = op.merge("account_items", flags, removals)
    updates: Stream[Traced[TrustUpdate]] = guard.stateful(
        "account",
        op.key_on("by_account", account_items, account_of),
        lambda resume: AccountFold(resume, t, options.auto_shadow_ban),
    )
    op.output("abuse_out", updates, sinks.abuse)
    guard.finish(dead_letters)
    return flow


def wipe(settings: Settings) -> None:
    """Empty the state this dataflow derives (for replay). The exclusions and sanctions
    it published stay on the log: re-published ones are idempotent there."""
    store.wipe(settings)
