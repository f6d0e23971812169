"""Ranking formulas (Reddit's published ones) and top-window membership.

All values are comparable across communities, so a home feed can merge per-community
rankings directly.
"""

from __future__ import annotations

import math
import zlib
from datetime import UTC, datetime, timedelta

REDDIT_EPOCH = 1134028003  # seconds; Reddit's hot-rank reference time
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RISING_MAX_AGE = timedelta(hours=24)  # rising only ranks young posts
HOUR = timedelta(hours=1)

WINDOWS: dict[str, timedelta | None] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=30),
    "year": timedelta(days=365),
    "all": None,
}


def hot(score: int, created: datetime) -> float:
    """sign(s)·log10(max(|s|, 1)) + (t - 1134028003) / 45000, rounded like Reddit's."""
    order = math.log10(max(abs(score), 1))
    sign = 1 if score > 0 else -1 if score < 0 else 0
    seconds = created.timestamp() - REDDIT_EPOCH
    return round(sign * order + seconds / 45000, 7)


def controversy(upvotes: int, downvotes: int) -> float:
    """(ups + downs) ^ (min / max); 0 when either side is 0."""
    if upvotes <= 0 or downvotes <= 0:
        return 0.0
    magnitude = upvotes + downvotes
    balance = downvotes / upvotes if upvotes > downvotes else upvotes / downvotes
    return float(magnitude**balance)


def rising(score: int, created: datetime, now: datetime) -> float:
    """Score velocity: score / max(1, age in hours)."""
    hours = (now - created).total_seconds() / 3600
    return score / max(1.0, hours)


def windows_containing(created: datetime, now: datetime) -> list[str]:
    """The top/controversial windows a post of this age belongs to now."""
    age = now - created
    return [name for name, span in WINDOWS.items() if span is None or age < span]


def next_rerank(post_id: str, now: datetime, every: timedelta, slots: int) -> datetime:
    """The post's next re-rank after `now`: once every `every`, in one of `slots` fixed
    slots of the clock (counted from the Unix epoch) taken from its id. The young posts
    then re-rank in `slots` even groups, each woken together: one pass of the flow per
    group, instead of one group holding every post woken together since the flow
    started (a wake of "now + every" keeps them together for good), or one pass per
    post (each pass costs a scan of every post's timer)."""
    step = every // timedelta(microseconds=1)
    slot = zlib.crc32(post_id.encode("utf-8", "surrogatepass")) % slots
    phase = slot * step // slots
    since = (now - EPOCH) // timedelta(microseconds=1) - phase
    return EPOCH + timedelta(microseconds=(since // step + 1) * step + phase)


def rerank_every(
    score: int, created: datetime, now: datetime, cadence: timedelta
) -> timedelta | None:
    """How often the clock alone moves a post's rising enough to rewrite it (None: it
    does not). Rising is 0 for a score of 0, and the score itself for a post under an
    hour old; after that, `score / hours` loses 1/h of itself per hour at h hours, so a
    re-rank every `cadence` per whole hour of age keeps it within `cadence` / 1 h of its
    true value (1/60 at a minute) at any age, the precision an hour-old post has on a
    fixed cadence, for a sixth of the re-ranks over a post's first day."""
    age = now - created
    if score == 0 or age < HOUR or age >= RISING_MAX_AGE:
        return None
    return cadence * (age // HOUR)


def next_window_exit(created: datetime, now: datetime) -> datetime | None:
    """When the post next leaves a window (None once only `all` remains)."""
    exits = [created + span for span in WINDOWS.values() if span is not None]
    upcoming = [t for t in exits if t > now]
    return min(upcoming) if upcoming else None
