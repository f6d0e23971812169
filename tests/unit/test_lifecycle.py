"""The archive and eviction rule shared by the API and the dataflows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ulid import ULID

from domain.lifecycle import ARCHIVE_GRACE, IDLE_BEFORE_EVICTION, evictable_at, is_archived

ARCHIVE = timedelta(days=180)
BORN = datetime(2025, 1, 1, tzinfo=UTC)


def id_at(at: datetime) -> str:
    return str(ULID.from_datetime(at))


def test_archived_only_after_the_archive_age():
    target = id_at(BORN)
    assert not is_archived(target, ARCHIVE, BORN + ARCHIVE - timedelta(seconds=1))
    assert is_archived(target, ARCHIVE, BORN + ARCHIVE + timedelta(seconds=1))


def test_state_is_evicted_once_archived_plus_grace_and_idle():
    target = id_at(BORN)
    closes = BORN + ARCHIVE + ARCHIVE_GRACE
    # touched long ago: the archive age decides
    assert evictable_at(target, BORN, ARCHIVE) == closes
    # touched just before it closes: it must stay idle for a while first
    late = closes - timedelta(minutes=5)
    assert evictable_at(target, late, ARCHIVE) == late + IDLE_BEFORE_EVICTION
