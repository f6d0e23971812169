"""A compact map of voter id -> packed vote, for tallies that hold millions of voters.

A dict of str -> int costs about 80 bytes per (voter, target) pair: a hash slot with
its slack and an int object per value. User ids are ULIDs, i.e. 128-bit numbers, so
most pairs are kept in three sorted typed arrays instead (high and low 64 bits of the
id, packed vote): 24 bytes a pair. New voters go to a small dict first and are merged
into the arrays once it holds a sixteenth of them, which keeps a merge's cost
amortised to a few element copies per vote. Ids that are not canonical ULIDs (tests, legacy
data) stay in a plain dict, so every string key behaves exactly as in a dict.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Mapping

from domain.ids import ulid_number, ulid_string

_LOW = (1 << 64) - 1
_MAX_PACKED = _LOW  # an unsigned 64-bit array element
MERGE_MIN = 16


class VoterBook:
    """user id -> packed vote (a non-negative int below 2**64; `put` refuses others)."""

    __slots__ = ("_high", "_low", "_other", "_packed", "_recent")

    def __init__(self, items: Mapping[str, int] | None = None) -> None:
        self._high = array("Q")
        self._low = array("Q")
        self._packed = array("Q")
        self._recent: dict[str, int] = {}  # ULID voters not merged yet
        # Voters whose id is not a canonical ULID; None until there is one.
        self._other: dict[str, int] | None = None
        for user_id, packed in (items or {}).items():
            self[user_id] = packed

    def _find(self, number: int) -> int:
        high, low = number >> 64, number & _LOW
        i = bisect_left(self._high, high)
        n = len(self._high)
        while i < n and self._high[i] == high:
            if self._low[i] == low:
                return i
            i += 1
        return -1

    def get(self, user_id: str) -> int | None:
        held = self._recent.get(user_id)
        if held is not None:
            return held
        number = ulid_number(user_id)
        if number is None:
            return None if self._other is None else self._other.get(user_id)
        i = self._find(number)
        return None if i < 0 else self._packed[i]

    def __setitem__(self, user_id: str, packed: int) -> None:
        self.put(user_id, packed, only_newer=False)

    def put(self, user_id: str, packed: int, only_newer: bool = True) -> tuple[bool, int | None]:
        """Store `packed` for the voter, unless `only_newer` and what is held has the
        same or a later version (packed // 4). Returns (stored, what was held).
        ValueError, with nothing changed, for a value the arrays cannot hold."""
        if not 0 <= packed <= _MAX_PACKED:
            raise ValueError(f"packed vote out of range: {packed}")

        def refused(held: int | None) -> bool:
            return only_newer and held is not None and packed >> 2 <= held >> 2

        held = self._recent.get(user_id)
        if held is not None:
            if refused(held):
                return False, held
            self._recent[user_id] = packed
            return True, held
        number = ulid_number(user_id)
        if number is None:
            if self._other is None:
                self._other = {}
            held = self._other.get(user_id)
            if refused(held):
                return False, held
            self._other[sys.intern(user_id)] = packed
            return True, held
        i = self._find(number)
        if i >= 0:
            held = self._packed[i]
            if refused(held):
                return False, held
            self._packed[i] = packed
            return True, held
        # Interned: one string per user however many targets they vote on.
        self._recent[sys.intern(user_id)] = packed
        if len(self._recent) >= max(MERGE_MIN, len(self._packed) >> 4):
            self._merge()
        return True, None

    def _merge(self) -> None:
        """Insert the recent voters into the arrays: a bisect per new voter and slice
        copies (memcpy) for the runs between them, so no per-element Python work."""
        new = sorted(
            (number >> 64, number & _LOW, packed)
            for user_id, packed in self._recent.items()
            if (number := ulid_number(user_id)) is not None
        )
        high, low, packed = array("Q"), array("Q"), array("Q")
        start = 0
        for h, lo, p in new:
            # Ordered by the high half only; `_find` scans the few equal ones.
            i = bisect_left(self._high, h, start)
            high.extend(self._high[start:i])
            low.extend(self._low[start:i])
            packed.extend(self._packed[start:i])
            high.append(h)
            low.append(lo)
            packed.append(p)
            start = i
        high.extend(self._high[start:])
        low.extend(self._low[start:])
        packed.extend(self._packed[start:])
        self._high, self._low, self._packed = high, low, packed
        self._recent = {}

    def __len__(self) -> int:
        return len(self._packed) + len(self._recent) + len(self._other or ())

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, str) and self.get(user_id) is not None

    def items(self) -> Iterator[tuple[str, int]]:
        for high, low, packed in zip(self._high, self._low, self._packed, strict=True):
            yield ulid_string(high << 64 | low), packed
        yield from self._recent.items()
        yield from (self._other or {}).items()

    def as_dict(self) -> dict[str, int]:
        return dict(self.items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, VoterBook):
            return self.as_dict() == other.as_dict()
        if isinstance(other, Mapping):
            return self.as_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> VoterBook:
        book = VoterBook()
        book._high = array("Q", self._high)
        book._low = array("Q", self._low)
        book._packed = array("Q", self._packed)
        book._recent = dict(self._recent)
        book._other = None if self._other is None else dict(self._other)
        return book

    def __repr__(self) -> str:
        return f"VoterBook({len(self)} voters)"

    def __getstate__(
        self,
    ) -> tuple[bytes, bytes, bytes, dict[str, int], dict[str, int] | None]:
        return (
            self._high.tobytes(),
            self._low.tobytes(),
            self._packed.tobytes(),
            self._recent,
            self._other,
        )

    def __setstate__(
        self, state: tuple[bytes, bytes, bytes, dict[str, int], dict[str, int] | None]
    ) -> None:
        high, low, packed, recent, other = state
        self._high, self._low, self._packed = array("Q"), array("Q"), array("Q")
        self._high.frombytes(high)
        self._low.frombytes(low)
        self._packed.frombytes(packed)
        self._recent = {sys.intern(k): v for k, v in recent.items()}
        self._other = None if other is None else {sys.intern(k): v for k, v in other.items()}
