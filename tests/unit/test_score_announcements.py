"""The votes dataflow announces a target's score at most once per interval: the first
change at once, later ones coalesced into one at the interval's end, none lost to a
restart or to the end of a bounded run; every change is still a tally."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.testing import TestingSink, run_main

from dataflows import votes
from dataflows.votes import TallyFold, TallyOut
from domain.ids import new_id
from tests.unit.flows import Log, a_post, a_vote

HOUR = timedelta(hours=1)
ARCHIVE = timedelta(days=180)


def fold_with_votes(every: timedelta, count: int) -> tuple[TallyFold, list[TallyOut]]:
    post = a_post()
    fold = TallyFold(None, ARCHIVE, every)
    out: list[TallyOut] = []
    for version in range(1, count + 1):
        fold.apply(a_vote(post, new_id(), 1, version))
        out += fold.emit()
    return fold, out


def test_first_change_goes_out_at_once_and_later_ones_are_held() -> None:
    fold, out = fold_with_votes(HOUR, 3)
    assert [t.upvotes for t in out] == [1, 2, 3]  # every change is a tally
    assert [t.announce for t in out] == [True, False, False]
    state = fold.state
    assert state is not None and state.announced is not None
    assert fold.notify_at() == state.announced + HOUR  # the held change's timer


def test_the_timer_announces_the_latest_tally_once() -> None:
    fold, _ = fold_with_votes(HOUR, 3)
    outs, discard = fold.on_notify()
    assert not discard
    assert [(t.upvotes, t.announce) for t in outs] == [(3, True)]
    # Nothing is held any more: the next timer is eviction again, far away.
    due = fold.notify_at()
    assert due is not None and due > datetime.now(UTC) + timedelta(days=1)


def test_without_an_interval_every_change_is_announced() -> None:
    _, out = fold_with_votes(timedelta(0), 3)
    assert all(t.announce for t in out)


def test_a_held_change_survives_a_snapshot_and_resume() -> None:
    fold, _ = fold_with_votes(HOUR, 2)
    # Bytewax pickles the snapshot into its recovery store.
    resumed = TallyFold(pickle.loads(pickle.dumps(fold.snapshot())), ARCHIVE, HOUR)  # noqa: S301
    assert resumed.notify_at() == fold.notify_at()
    outs, _ = resumed.on_notify()
    assert [(t.upvotes, t.announce) for t in outs] == [(2, True)]


def test_a_snapshot_from_before_announcements_still_loads() -> None:
    fold, _ = fold_with_votes(timedelta(0), 1)
    state = fold.snapshot()
    assert state is not None
    del state.__dict__["announced"], state.__dict__["announce_due"]  # the old form
    resumed = TallyFold(pickle.loads(pickle.dumps(state)), ARCHIVE, HOUR)  # noqa: S301
    resumed.apply(a_vote(a_post(), new_id(), -1, 9))
    assert [t.announce for t in resumed.emit()] == [True]


def test_a_bounded_run_announces_the_final_tally_of_every_target() -> None:
    log = Log()
    posts = [a_post() for _ in range(3)]
    version = 0
    for post in posts:
        for direction in (1, 1, -1, 1):
            version += 1
            log.event("votes", a_vote(post, new_id(), direction, version))
    tallies: list[Any] = []
    scores: list[Any] = []
    run_main(
        votes.build_flow(
            log.source(),
            votes.Sinks(TestingSink(tallies), TestingSink(scores)),
            TestingSink([]),
            announce_every=HOUR,
        )
    )
    final = {t.value.target_id: t.value for t in tallies}
    assert {p.post_id: (final[p.post_id].upvotes, final[p.post_id].downvotes) for p in posts} == {
        p.post_id: (3, 1) for p in posts
    }
    # Within the hour each target is announced at most twice: its first batch's
    # change at once and whatever was held back, at the end of the run.
    announced: dict[bytes, int] = {}
    for message in scores:
        announced[message.value.key] = announced.get(message.value.key, 0) + 1
    assert set(announced) == {p.post_id.encode() for p in posts}
    assert all(n <= 2 for n in announced.values())
    last = {m.value.key: m.value.value for m in scores}
    for post in posts:
        assert b'"upvotes":3' in last[post.post_id.encode()]
        assert b'"downvotes":1' in last[post.post_id.encode()]
