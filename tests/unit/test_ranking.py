"""Ranking formulas against hand-computed values."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.ranking import (
    controversy,
    hot,
    next_rerank,
    next_window_exit,
    rerank_every,
    rising,
    windows_containing,
)

T0 = datetime.fromtimestamp(1134028003 + 45000 * 100, UTC)  # 100 "hot units" after epoch


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0, 100.0),  # log10(1) = 0, sign 0
        (1, 100.0),  # log10(1) = 0
        (10, 101.0),
        (1000, 103.0),
        (-10, 99.0),
        (-1000, 97.0),
        (55, 100 + 1.7403627),  # log10(55) = 1.74036268...
    ],
)
def test_hot(score, expected):
    assert hot(score, T0) == pytest.approx(expected, abs=1e-7)


def test_hot_twelve_and_a_half_hours_equal_a_tenfold_score():
    later = T0 + timedelta(seconds=45000)
    assert hot(1, later) == pytest.approx(hot(10, T0))


@pytest.mark.parametrize(
    ("ups", "downs", "expected"),
    [
        (0, 10, 0.0),
        (10, 0, 0.0),
        (10, 10, 20.0),  # balance 1 -> 20^1
        (100, 50, 150**0.5),  # 12.2474...
        (50, 100, 150**0.5),
        (3, 1, 4 ** (1 / 3)),  # 1.5874...
    ],
)
def test_controversy(ups, downs, expected):
    assert controversy(ups, downs) == pytest.approx(expected)


def test_rising_is_velocity():
    assert rising(30, T0, T0 + timedelta(minutes=30)) == 30  # under an hour: / 1
    assert rising(30, T0, T0 + timedelta(hours=3)) == 10
    assert rising(-6, T0, T0 + timedelta(hours=2)) == -3


def test_windows_by_age():
    now = T0 + timedelta(minutes=59)
    assert windows_containing(T0, now) == ["hour", "day", "week", "month", "year", "all"]
    assert windows_containing(T0, T0 + timedelta(hours=2)) == [
        "day",
        "week",
        "month",
        "year",
        "all",
    ]
    assert windows_containing(T0, T0 + timedelta(days=400)) == ["all"]
    assert next_window_exit(T0, now) == T0 + timedelta(hours=1)
    assert next_window_exit(T0, T0 + timedelta(days=2)) == T0 + timedelta(weeks=1)
    assert next_window_exit(T0, T0 + timedelta(days=400)) is None


def test_young_posts_rerank_in_a_few_even_groups_on_the_clock():
    every = timedelta(seconds=60)
    now = datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC)
    ids = [f"p_{i:026d}" for i in range(600)]
    wakes = [next_rerank(post_id, now, every, 6) for post_id in ids]
    assert all(now < wake <= now + every for wake in wakes)
    # Six slots of the clock, 10 s apart, whatever the posts' ages: one pass each.
    assert sorted({w.second for w in wakes}) == [0, 10, 20, 30, 40, 50]
    groups = [sum(1 for w in wakes if w.second == s) for s in range(0, 60, 10)]
    assert min(groups) > 60  # about 100 each
    # Each post keeps its slot: woken at its time, the next is one interval on.
    for post_id, wake in zip(ids[:20], wakes[:20], strict=True):
        assert next_rerank(post_id, wake, every, 6) == wake + every
        assert next_rerank(post_id, wake - timedelta(microseconds=1), every, 6) == wake
    assert [next_rerank(p, now, every, 6) for p in ids] == wakes  # deterministic


def test_one_slot_is_the_whole_interval():
    every = timedelta(seconds=60)
    now = datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC)
    assert next_rerank("p_x", now, every, 1) == datetime(2026, 1, 1, 12, 1, tzinfo=UTC)


def test_rising_is_rewritten_as_often_as_the_clock_moves_it():
    minute = timedelta(minutes=1)
    assert rerank_every(0, T0, T0 + timedelta(hours=3), minute) is None  # 0 stays 0
    assert rerank_every(4, T0, T0 + timedelta(minutes=59), minute) is None  # its score
    assert rerank_every(4, T0, T0 + timedelta(hours=24), minute) is None  # no longer rises
    assert rerank_every(-2, T0, T0 + timedelta(hours=1), minute) == minute
    assert rerank_every(4, T0, T0 + timedelta(hours=7, minutes=59), minute) == 7 * minute
    # Between two re-ranks rising moves by at most a sixtieth of itself, at every age.
    for minutes in range(60, 24 * 60, 7):
        now = T0 + timedelta(minutes=minutes)
        every = rerank_every(5, T0, now, minute)
        assert every is not None
        drift = 1 - rising(5, T0, now + every) / rising(5, T0, now)
        assert 0 < drift <= 1 / 60 + 1e-9
