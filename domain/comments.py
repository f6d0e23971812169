"""Comment trees: materialised paths, sibling sorts and depth-limited views.

A comment's path is its ancestors' slots and its own, each a fixed-width decimal
segment joined by dots ("000001", "000001.000003"): lexical order is tree order
(a parent sorts right before its descendants), a subtree is a path-prefix range, and
depth is the number of dots. Slots are allocated per parent by the API (a CQL
lightweight transaction, see `stores/comments.py`), so siblings never share one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from domain.errors import Conflict, ValidationFailed
from domain.ranking import controversy

SEGMENT_WIDTH = 6
MAX_SLOT = 10**SEGMENT_WIDTH - 1
MAX_DEPTH = 100  # deepest allowed reply (top level is depth 0)
DELETED = "[deleted]"

Sort = Literal["best", "top", "new", "controversial"]
SORTS: tuple[str, ...] = ("best", "top", "new", "controversial")

# z for an 80% confidence interval, as Reddit's "best" sort uses.
WILSON_Z = 1.281551565545


def segment(slot: int) -> str:
    if not 1 <= slot <= MAX_SLOT:
        raise Conflict("this comment has too many replies", {"slot": slot})
    return f"{slot:0{SEGMENT_WIDTH}d}"


def check_can_reply(parent: str) -> None:
    """Refuse a reply that would nest deeper than MAX_DEPTH ("" is the post itself)."""
    if parent and depth(parent) + 1 > MAX_DEPTH:
        raise ValidationFailed(
            f"replies nest at most {MAX_DEPTH} levels deep", {"parent_id": "too deep"}
        )


def child_path(parent: str, slot: int) -> str:
    """Path of the `slot`-th child of `parent` ("" is the post itself)."""
    check_can_reply(parent)
    return f"{parent}.{segment(slot)}" if parent else segment(slot)


def parent_path(path: str) -> str:
    head, _, _ = path.rpartition(".")
    return head


def depth(path: str) -> int:
    return path.count(".")


def subtree_bounds(path: str) -> tuple[str, str]:
    """[low, high) bounds of the paths strictly below `path` ('/' follows '.')."""
    return f"{path}.", f"{path}/"


def wilson_lower_bound(upvotes: int, downvotes: int, z: float = WILSON_Z) -> float:
    """Lower bound of the Wilson score interval for the share of upvotes.

    Ranks a comment by how sure we are that it is good, so 1 up / 0 down does not
    beat 100 up / 5 down. Zero votes score 0.
    """
    n = upvotes + downvotes
    if n == 0:
        return 0.0
    p = upvotes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt((p * (1 - p) + z * z / (4 * n)) / n)
    return (centre - spread) / (1 + z * z / n)


@dataclass(frozen=True)
class Comment:
    comment_id: str
    parent_id: str | None
    path: str
    author: str
    body: str
    deleted: bool
    created_at: datetime
    edited_at: datetime | None = None
    upvotes: int = 0
    downvotes: int = 0
    author_id: str = ""
    removed: bool = False  # by a moderator
    shadow_banned: bool = False  # its author is shadow-banned (shown to moderators only)

    @property
    def score(self) -> int:
        return self.upvotes - self.downvotes

    @property
    def depth(self) -> int:
        return depth(self.path)


@dataclass
class Thread:
    comment: Comment
    children: list[Thread] = field(default_factory=list)
    more_children: int = 0  # direct replies left out (depth or limit reached)


SortKey = Callable[[Comment], tuple[Any, ...]]

# Ascending keys: the best sibling first; ties keep the older comment (lower path) first.
SORT_KEYS: dict[str, SortKey] = {
    "best": lambda c: (-wilson_lower_bound(c.upvotes, c.downvotes), -c.score, c.path),
    "top": lambda c: (-c.score, c.path),
    "new": lambda c: (-c.created_at.timestamp(), c.path),
    "controversial": lambda c: (-controversy(c.upvotes, c.downvotes), c.path),
}


def arrange(
    comments: Iterable[Comment],
    sort: str,
    levels: int,
    limit: int,
    *,
    under: str = "",
    offset: int = 0,
) -> tuple[list[Thread], int]:
    """The replies of `under` ("" = the post) as threads `levels` deep.

    Siblings are sorted by `sort` at every level and at most `limit` of them are
    shown per parent (the first level from `offset`); what is left out is counted
    in `more_children`. Returns (threads, first-level replies after this page).
    """
    if sort not in SORT_KEYS:
        raise ValidationFailed(f"sort must be one of {', '.join(SORTS)}", {"sort": sort})
    replies: dict[str, list[Comment]] = defaultdict(list)
    for c in comments:
        replies[parent_path(c.path)].append(c)
    key = SORT_KEYS[sort]

    def level(parent: str, remaining: int, start: int) -> tuple[list[Thread], int]:
        siblings = replies.get(parent, [])
        if remaining <= 0:
            return [], len(siblings)
        shown = sorted(siblings, key=key)[start : start + limit]
        threads = []
        for c in shown:
            children, more = level(c.path, remaining - 1, 0)
            threads.append(Thread(c, children, more))
        return threads, max(0, len(siblings) - start - len(shown))

    return level(under, levels, offset)
