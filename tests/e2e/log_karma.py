"""Recompute karma from the votes topic itself: the reference the karma dataflow must match.

Per target, the tally of every vote event (latest version per voter wins); a target's
contribution is its score minus its author's own vote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.votes import Tally
from tests.e2e.log_tallies import votes_in_log


@dataclass
class Target:
    author_id: str
    kind: str
    tally: Tally = field(default_factory=Tally)


def recompute_karma(bootstrap: str, authors: set[str]) -> dict[str, tuple[int, int]]:
    """(post karma, comment karma) of each of `authors`."""
    targets: dict[str, Target] = {}
    for vote in votes_in_log(bootstrap):
        if vote.author_id in authors:
            target = targets.setdefault(vote.target_id, Target(vote.author_id, vote.target_type))
            target.tally.apply(vote.user_id, vote.direction, vote.version)
    karma = {a: [0, 0] for a in authors}
    for t in targets.values():
        value = t.tally.score - t.tally.direction_of(t.author_id)
        karma[t.author_id][0 if t.kind == "post" else 1] += value
    return {a: (post, comment) for a, (post, comment) in karma.items()}
