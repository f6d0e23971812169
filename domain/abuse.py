"""Behaviour signals of the spam dataflow, as pure state machines over event time.

- Rapid posting: an author's posts in a sliding window.
- Link spam: one registrable domain posted by one author into many communities.
- Vote rings: accounts that upvote each other's content, repeatedly, in both
  directions (`MutualVotes`, kept per unordered pair of accounts), assembled into
  groups where every member upvotes at least two others both ways (`RingGraph`, the
  2-core of the mutual-vote graph).
- Trust: a score in [0, 1] per account from its age, karma, removals and signals.

Every window is in event time (the time in the event), so a replay of the log gives
the same signals as the live run. Each state keeps only what its window needs and a
hard cap of entries, so it stays bounded whatever one key receives.
"""

from __future__ import annotations

import math
from bisect import insort
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

Signal = str  # "rapid_posting", "link_spam", "vote_ring"
SIGNALS: tuple[Signal, ...] = ("rapid_posting", "link_spam", "vote_ring")


@dataclass(frozen=True)
class Thresholds:
    rapid_posts: int = 4  # posts by one author ...
    rapid_window: timedelta = timedelta(seconds=60)  # ... within this window
    link_communities: int = 3  # one domain by one author into this many communities ...
    link_window: timedelta = timedelta(hours=1)  # ... within this window
    mutual_targets: int = 3  # distinct targets upvoted in each direction of a pair ...
    mutual_window: timedelta = timedelta(hours=6)  # ... within this window
    ring_min_size: int = 3
    ring_edge_ttl: timedelta = timedelta(days=1)  # how long a mutual edge is remembered
    cap: int = 200  # entries any one key keeps at most
    shadow_ban_below: float = 0.2  # trust under which an account is shadow-banned


@dataclass
class Flag:
    """A signal raised for an account, with what it saw."""

    user_id: str
    signal: Signal
    at: datetime
    targets: list[tuple[str, str, str]]  # (target id, target type, community id)
    evidence: dict[str, object]
    ring_id: str = ""


def _trim(items: deque[tuple[datetime, ...]], now: datetime, window: timedelta, cap: int) -> None:
    while items and (now - items[0][0] > window or len(items) > cap):
        items.popleft()


@dataclass
class PostRate:
    """An author's recent posts; flags once per burst that crosses the threshold."""

    # (at, post id, community id), oldest first: posts of one author arrive from several
    # partitions, so not always in time order
    posts: list[tuple[datetime, str, str]] = field(default_factory=list)
    flagged_until: datetime | None = None

    def add(
        self, user_id: str, at: datetime, post_id: str, community_id: str, t: Thresholds
    ) -> Flag | None:
        insort(self.posts, (at, post_id, community_id))
        newest = self.posts[-1][0]
        self.posts = [p for p in self.posts if newest - p[0] <= t.rapid_window][-t.cap :]
        if len(self.posts) < t.rapid_posts:
            return None
        if self.flagged_until is not None and at <= self.flagged_until:
            return None
        self.flagged_until = at + t.rapid_window
        first, last = self.posts[0][0], self.posts[-1][0]
        return Flag(
            user_id,
            "rapid_posting",
            at,
            [(pid, "post", cid) for _, pid, cid in self.posts],
            {"posts": len(self.posts), "seconds": round((last - first).total_seconds(), 1)},
        )

    def idle_since(self) -> datetime | None:
        return self.posts[-1][0] if self.posts else None


@dataclass
class LinkSpread:
    """One domain's recent posts per author; flags an author the first time their posts
    of it reach the threshold of distinct communities within the window."""

    by_author: dict[str, deque[tuple[datetime, str, str]]] = field(default_factory=dict)
    flagged: dict[str, datetime] = field(default_factory=dict)  # author -> when

    def add(
        self,
        domain: str,
        user_id: str,
        at: datetime,
        post_id: str,
        community_id: str,
        t: Thresholds,
    ) -> Flag | None:
        posts = self.by_author.setdefault(user_id, deque())
        posts.append((at, post_id, community_id))
        _trim(posts, at, t.link_window, t.cap)  # type: ignore[arg-type]
        if len(self.by_author) > t.cap:  # the least recently active author goes
            oldest = min(self.by_author, key=lambda a: self.by_author[a][-1][0])
            del self.by_author[oldest]
        communities = {c for _, _, c in posts}
        when = self.flagged.get(user_id)
        if len(communities) < t.link_communities or (when and at - when < t.link_window):
            return None
        self.flagged[user_id] = at
        return Flag(
            user_id,
            "link_spam",
            at,
            [(pid, "post", cid) for _, pid, cid in posts],
            {"domain": domain, "communities": len(communities), "posts": len(posts)},
        )

    def idle_since(self) -> datetime | None:
        times = [p[-1][0] for p in self.by_author.values() if p]
        return max(times) if times else None


@dataclass(frozen=True)
class Upvote:
    voter: str
    author: str
    target_id: str
    target_type: str
    community_id: str
    at: datetime


@dataclass(frozen=True)
class MutualEdge:
    """Two accounts that upvoted each other's content repeatedly."""

    a: str
    b: str
    at: datetime
    # the content they upvoted for each other: (target id, type, community id, author)
    targets: tuple[tuple[str, str, str, str], ...]


def pair_key(x: str, y: str) -> str:
    return f"{x}|{y}" if x < y else f"{y}|{x}"


@dataclass
class MutualVotes:
    """Upvotes between two accounts, per direction: distinct targets within the window.
    Emits the edge once when both directions reach the threshold (again only after it
    lapsed)."""

    # voter -> (at, target id, type, community id, author) of their upvotes of the other
    ways: dict[str, deque[tuple[datetime, str, str, str, str]]] = field(default_factory=dict)
    reported_at: datetime | None = None
    pair: str = ""  # the key it is kept under (pair_key); "" in snapshots made before it

    def add(self, vote: Upvote, t: Thresholds) -> MutualEdge | None:
        way = self.ways.setdefault(vote.voter, deque())
        if any(held[1] == vote.target_id for held in way):
            return None
        way.append((vote.at, vote.target_id, vote.target_type, vote.community_id, vote.author))
        for held in self.ways.values():
            _trim(held, vote.at, t.mutual_window, t.cap)  # type: ignore[arg-type]
        if len(self.ways) != 2 or min(len(w) for w in self.ways.values()) < t.mutual_targets:
            return None
        if self.reported_at is not None and vote.at - self.reported_at < t.mutual_window:
            return None
        self.reported_at = vote.at
        a, b = sorted(self.ways)
        targets = tuple(held[1:] for w in self.ways.values() for held in w)
        return MutualEdge(a, b, vote.at, targets)

    def idle_since(self) -> datetime | None:
        times = [w[-1][0] for w in self.ways.values() if w]
        return max(times) if times else None


@dataclass
class RingGraph:
    """Mutual edges (only those: a tiny fraction of votes) with their time; a ring is a
    connected group of at least `ring_min_size` accounts in the graph's 2-core (every
    member mutual with at least two others in it)."""

    edges: dict[tuple[str, str], MutualEdge] = field(default_factory=dict)
    flagged: dict[str, str] = field(default_factory=dict)  # member -> ring id

    def add(self, edge: MutualEdge, t: Thresholds) -> list[Flag]:
        self.edges[(edge.a, edge.b)] = edge
        for key in [k for k, e in self.edges.items() if edge.at - e.at > t.ring_edge_ttl]:
            del self.edges[key]
        ring = self._core_component(edge.a)
        if len(ring) < t.ring_min_size:
            return []
        new = sorted(m for m in ring if m not in self.flagged)
        if not new:
            return []
        ring_id = next((self.flagged[m] for m in sorted(ring) if m in self.flagged), None)
        ring_id = ring_id or "ring-" + min(ring)
        inside = [e for (a, b), e in self.edges.items() if a in ring and b in ring]
        first = min(e.at for e in inside)
        flags = []
        for member in new:
            self.flagged[member] = ring_id
            # the member's own content that the ring upvoted
            own = sorted(
                {
                    tg[:3]
                    for e in inside
                    if member in (e.a, e.b)
                    for tg in e.targets
                    if tg[3] == member
                }
            )
            flags.append(
                Flag(
                    member,
                    "vote_ring",
                    edge.at,
                    own,
                    {
                        "ring_id": ring_id,
                        "members": sorted(ring),
                        "mutual_pairs": len(inside),
                        "first_mutual_at": first.isoformat(),
                    },
                    ring_id,
                )
            )
        return flags

    def _core_component(self, start: str) -> set[str]:
        neighbours: dict[str, set[str]] = {}
        for a, b in self.edges:
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
        # 2-core: peel accounts with fewer than two mutual partners
        changed = True
        while changed:
            changed = False
            for node in [n for n, ns in neighbours.items() if len(ns) < 2]:
                for other in neighbours.pop(node):
                    if other in neighbours:
                        neighbours[other].discard(node)
                changed = True
        if start not in neighbours:
            return set()
        seen, stack = {start}, [start]
        while stack:
            for other in neighbours[stack.pop()]:
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        return seen


def trust_score(
    age: timedelta, karma: int, removals: int, signals: dict[str, int], excluded: bool
) -> float:
    """0 (certainly abusive) .. 1 (established and clean). Age and karma raise it
    slowly (a month, a thousand karma); removals and each kind of signal lower it."""
    score = 0.5
    score += 0.2 * min(1.0, age.total_seconds() / (30 * 86400))
    score += 0.2 * min(1.0, math.log10(1 + max(0, karma)) / 3)
    score -= 0.1 * min(3, removals)
    score -= 0.35 * min(1, signals.get("rapid_posting", 0))
    score -= 0.45 * min(1, signals.get("link_spam", 0))
    score -= 0.6 * min(1, signals.get("vote_ring", 0))
    if excluded:
        score -= 0.1
    return round(max(0.0, min(1.0, score)), 3)
