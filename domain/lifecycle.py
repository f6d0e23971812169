"""When a target's derived state may be forgotten.

Votes and comments close once a target is older than the archive age (the API refuses
them then, as Reddit does). A dataflow may drop a target's state once the target is
past that age plus a grace period (events accepted just before the close may still be
in flight) and nothing has touched it for an hour.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.ids import created_at

ARCHIVE_GRACE = timedelta(days=1)
IDLE_BEFORE_EVICTION = timedelta(hours=1)


def is_archived(target_id: str, archive_after: timedelta, now: datetime | None = None) -> bool:
    """Whether the post or comment (by the time in its id) is closed to votes and replies."""
    return created_at(target_id) < (now or datetime.now(UTC)) - archive_after


def evictable_at(target_id: str, touched: datetime, archive_after: timedelta) -> datetime:
    """The earliest time the state of `target_id`, last touched at `touched`, may go."""
    closes = created_at(target_id) + archive_after + ARCHIVE_GRACE
    return max(closes, touched + IDLE_BEFORE_EVICTION)
