"""Karma: what an author's posts and comments scored, without the author's own votes.

A target's contribution is its authoritative score minus the author's own vote on it
(a user voting on their own content earns nothing). Tallies are replaced, never
summed: the latest tally of a target (by `seq`) is its contribution, so a tally seen
twice, or an older one seen late, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["post", "comment"]


def contribution(score: int, author_vote: int) -> int:
    return score - author_vote


@dataclass(frozen=True)
class TargetKarma:
    """The latest contribution of one target to its author's karma."""

    author_id: str
    kind: str
    seq: int
    value: int


@dataclass(frozen=True)
class KarmaDelta:
    author_id: str
    kind: str
    delta: int


def replace_tally(
    held: TargetKarma | None, author_id: str, kind: str, seq: int, value: int
) -> tuple[TargetKarma | None, list[KarmaDelta]]:
    """Apply a target's tally; (new state, author deltas), or (held, []) if not newer."""
    if held is not None and seq <= held.seq:
        return held, []
    new = TargetKarma(author_id, kind, seq, value)
    if held is None:
        return new, [KarmaDelta(author_id, kind, value)] if value else []
    if (held.author_id, held.kind) == (author_id, kind):
        change = value - held.value
        return new, [KarmaDelta(author_id, kind, change)] if change else []
    # Attribution changed (cannot happen for a target today): move the whole value.
    return new, [
        KarmaDelta(held.author_id, held.kind, -held.value),
        KarmaDelta(author_id, kind, value),
    ]


@dataclass(frozen=True)
class Karma:
    user_id: str
    post: int = 0
    comment: int = 0
    seq: int = 0  # changes applied: orders the sink's writes

    @property
    def total(self) -> int:
        return self.post + self.comment

    def add(self, deltas: list[KarmaDelta]) -> Karma:
        post = self.post + sum(d.delta for d in deltas if d.kind == "post")
        comment = self.comment + sum(d.delta for d in deltas if d.kind == "comment")
        return Karma(self.user_id, post, comment, self.seq + 1)
