"""Vote transitions and per-target tallies.

A user's vote on a target is one of up (1), none (0) or down (-1); any of the nine
transitions is allowed. Each accepted change carries a per-target version `v`
assigned atomically by the API's Redis script (monotonic per target, therefore per
user and target). The tally keeps every voter's latest (version, direction), so
events applied in any order, or twice, give the same counts: a stale or repeated
event is ignored.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Literal

from domain.voter_book import VoterBook

Direction = Literal[-1, 0, 1]
DIRECTIONS: tuple[int, ...] = (-1, 0, 1)


def transition_delta(previous: int, new: int) -> tuple[int, int]:
    """(delta upvotes, delta downvotes) of moving a vote from `previous` to `new`."""
    if previous not in DIRECTIONS or new not in DIRECTIONS:
        raise ValueError(f"direction must be -1, 0 or 1, got {previous} -> {new}")
    d_up = (new == 1) - (previous == 1)
    d_down = (new == -1) - (previous == -1)
    return d_up, d_down


@dataclass
class Tally:
    """Authoritative tally of one target plus the state needed to stay exact.

    `voters` maps user id -> version * 4 + (direction + 1), in a `VoterBook`: about
    24 bytes per voter, since the state is held per target for months and pickled
    into every recovery snapshot that touches it.
    `seq` counts applied changes: a strictly increasing version for idempotent sinks.
    `excluded` holds voters found in a vote ring: their direction is kept but not
    counted (an exclusion is one more change, so it advances `seq`).
    """

    upvotes: int = 0
    downvotes: int = 0
    seq: int = 0
    max_version: int = 0
    voters: VoterBook = field(default_factory=VoterBook)
    excluded: frozenset[str] = frozenset()  # rare: a new set on each exclusion

    @property
    def score(self) -> int:
        return self.upvotes - self.downvotes

    def apply(self, user_id: str, direction: int, version: int) -> bool:
        """Apply one vote; False when it is older than (or equal to) what is held."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be -1, 0 or 1, got {direction}")
        stored, held = self.voters.put(user_id, version * 4 + direction + 1)
        if not stored:
            return False
        previous = 0 if held is None else held % 4 - 1
        if user_id not in self.excluded:
            d_up, d_down = transition_delta(previous, direction)
            self.upvotes += d_up
            self.downvotes += d_down
        self.seq += 1
        self.max_version = max(self.max_version, version)
        return True

    def exclude(self, user_id: str) -> bool:
        """Stop counting the user's vote here, now and later; False if already so."""
        if user_id in self.excluded:
            return False
        d_up, d_down = transition_delta(self.direction_of(user_id), 0)
        self.upvotes += d_up
        self.downvotes += d_down
        self.excluded = self.excluded | {sys.intern(user_id)}
        self.seq += 1
        return True

    def copy(self) -> Tally:
        return Tally(
            self.upvotes,
            self.downvotes,
            self.seq,
            self.max_version,
            self.voters.copy(),
            self.excluded,
        )

    def __setstate__(self, state: dict[str, object]) -> None:
        # Snapshots written before the VoterBook hold a plain dict.
        voters, excluded = state.get("voters"), state.get("excluded")
        if isinstance(voters, dict):
            state = {**state, "voters": VoterBook(voters)}
        if isinstance(excluded, set):
            state = {**state, "excluded": frozenset(excluded)}
        self.__dict__.update(state)

    def direction_of(self, user_id: str) -> int:
        packed = self.voters.get(user_id)
        return 0 if packed is None else packed % 4 - 1
