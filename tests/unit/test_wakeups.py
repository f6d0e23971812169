"""Far-off evictions wait in a per-process wheel, not as one Bytewax timer per key: the
wheel hands each due key out once, the votes and karma folds file their eviction there
and evict when woken at or after it, and a key woken early or long gone is unharmed."""

from __future__ import annotations

import pickle
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bytewax.testing import TestingSink, TestingSource, run_main
from ulid import ULID

from dataflows import karma, ranking, spam, votes
from dataflows.karma import TargetFold
from dataflows.ranking import PostState, RankFold, RankUpdate
from dataflows.spam import MutualFold, VoterFold
from dataflows.votes import TallyFold, TallyOut
from dataflows.wakeups import FAR, SLOT, WAKE, WakeupWheel, Woken, file_or_keep
from dataflows.wiring import PositionedPartition
from domain.abuse import MutualVotes, Thresholds, Upvote, pair_key
from domain.ids import community_of_post, new_id
from domain.lifecycle import ARCHIVE_GRACE, IDLE_BEFORE_EVICTION
from schemas.envelope import decode
from schemas.events import ScoreChanged, VoteCast, VoteExcluded
from tests.unit.flows import Log, a_post, a_vote
from tests.unit.test_spam_flow import run as run_spam
from tests.unit.test_spam_flow import scenario as spam_scenario

ARCHIVE = timedelta(days=180)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_the_wheel_hands_out_each_due_key_once_in_time_order() -> None:
    clock = Clock(T0)
    wheel = WakeupWheel(clock)
    wheel.at("later", T0 + timedelta(hours=2))
    wheel.at("soon", T0 + timedelta(minutes=30))
    wheel.at("soon", T0 + timedelta(minutes=30))  # filed twice: woken once
    assert len(wheel) == 2
    assert wheel.due() == []
    assert wheel.next_due() == T0 + timedelta(minutes=30)
    clock.now = T0 + timedelta(minutes=31)
    assert wheel.due() == ["soon"]
    assert wheel.due() == []
    clock.now = T0 + timedelta(hours=3)
    assert wheel.due() == ["later"]
    assert wheel.next_due() is None and len(wheel) == 0


def test_a_key_is_never_woken_before_its_time() -> None:
    clock = Clock(T0)
    wheel = WakeupWheel(clock)
    when = T0 + timedelta(minutes=30, seconds=1)  # not on a slot boundary
    wheel.at("k", when)
    clock.now = when - timedelta(seconds=1)
    assert wheel.due() == []
    clock.now = when + timedelta(seconds=SLOT)
    assert wheel.due() == ["k"]


def test_the_wheel_is_shared_by_threads() -> None:
    wheel = WakeupWheel(Clock(T0))

    def file(prefix: str) -> None:
        for i in range(2000):
            wheel.at(f"{prefix}{i}", T0 + timedelta(minutes=i % 50))

    threads = [threading.Thread(target=file, args=(p,)) for p in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wheel.clock = Clock(T0 + timedelta(days=1))
    assert sorted(wheel.due()) == sorted(f"{p}{i}" for p in "abcd" for i in range(2000))


def test_only_far_times_go_to_the_wheel() -> None:
    wheel = WakeupWheel(Clock(T0))
    near = T0 + FAR - timedelta(seconds=1)
    far = T0 + FAR
    assert file_or_keep(wheel, "a", near) == near  # stays a Bytewax timer
    assert file_or_keep(wheel, "b", far) is None
    assert file_or_keep(None, "c", far) == far  # no wheel (a bounded run): a timer
    assert len(wheel) == 1


def old_vote(age: timedelta, version: int = 1) -> VoteCast:
    """A vote on a post created `age` ago."""
    post = a_post()
    born = datetime.now(UTC) - age
    post_id = f"{ULID.from_datetime(born)}-{post.community_id}"
    return a_vote(post.model_copy(update={"post_id": post_id}), new_id(), 1, version)


def test_a_tally_files_its_eviction_with_the_wheel_instead_of_a_timer() -> None:
    wheel = WakeupWheel()
    fold = TallyFold(None, ARCHIVE, wheel=wheel)
    vote = old_vote(timedelta(days=1))
    fold.apply(vote)
    assert fold.notify_at() is None
    assert len(wheel) == 1
    due = wheel.next_due()
    assert due is not None and due >= datetime.now(UTC) + ARCHIVE - timedelta(days=2)


def test_a_tally_woken_before_its_time_stays_and_files_again() -> None:
    wheel = WakeupWheel()
    fold = TallyFold(None, ARCHIVE, wheel=wheel)
    fold.apply(old_vote(timedelta(days=1)))
    fold.apply(WAKE)
    assert fold.state is not None and not fold.finished()
    assert list(fold.emit()) != []  # the vote's tally; the wake-up adds nothing
    assert fold.notify_at() is None and len(wheel) == 1


def test_a_tally_woken_once_archived_and_idle_is_evicted() -> None:
    fold = TallyFold(None, ARCHIVE, wheel=WakeupWheel())
    fold.apply(old_vote(ARCHIVE + ARCHIVE_GRACE + timedelta(days=1)))
    assert fold.state is not None
    fold.state.touched = datetime.now(UTC) - IDLE_BEFORE_EVICTION - timedelta(minutes=1)
    fold.apply(WAKE)
    assert fold.finished()


def test_a_recently_touched_archived_tally_waits_for_its_idle_hour() -> None:
    wheel = WakeupWheel()
    fold = TallyFold(None, ARCHIVE, wheel=wheel)
    fold.apply(old_vote(ARCHIVE + ARCHIVE_GRACE + timedelta(days=1)))
    fold.apply(WAKE)  # touched just now
    assert not fold.finished()
    assert fold.notify_at() is None  # filed again, an idle hour out
    due = wheel.next_due()
    assert due is not None and due > datetime.now(UTC) + timedelta(minutes=59)


def test_a_wake_up_for_a_key_long_gone_leaves_nothing() -> None:
    fold = TallyFold(None, ARCHIVE, wheel=WakeupWheel())
    fold.apply(WAKE)
    assert fold.finished() and list(fold.emit()) == []


def a_score(target_id: str, seq: int, score: int) -> ScoreChanged:
    return ScoreChanged(
        target_id=target_id,
        target_type="post",
        community_id=community_of_post(target_id),
        author_id=new_id(),
        upvotes=max(score, 0),
        downvotes=max(-score, 0),
        score=score,
        seq=seq,
        version=seq,
    )


def test_karma_files_its_eviction_with_the_wheel_and_evicts_when_due() -> None:
    wheel = WakeupWheel()
    fold = TargetFold(None, ARCHIVE, wheel)
    old = old_vote(ARCHIVE + ARCHIVE_GRACE + timedelta(days=1)).target_id
    fold.apply(a_score(old, 1, 3))
    assert [d.delta for d in fold.emit()] == [3]
    fold.apply(WAKE)  # touched just now: not yet
    assert fold.state is not None
    assert fold.notify_at() is None and len(wheel) == 1  # filed an idle hour out
    fold.state = fold.state.__class__(
        fold.state.target_id, fold.state.karma, datetime.now(UTC) - 2 * IDLE_BEFORE_EVICTION
    )
    fold.apply(WAKE)
    assert fold.state is None


def test_karma_of_a_young_target_goes_to_the_wheel() -> None:
    wheel = WakeupWheel()
    fold = TargetFold(None, ARCHIVE, wheel)
    fold.apply(a_score(old_vote(timedelta(days=1)).target_id, 1, 2))
    assert fold.notify_at() is None and len(wheel) == 1


class Items:
    """A partition's inner reader: one batch of records, then nothing."""

    def __init__(self, batch: list[object]) -> None:
        self.batch = batch

    def next_batch(self) -> list[object]:
        out, self.batch = self.batch, []
        return out

    def close(self) -> None:
        pass


def test_a_kafka_partition_hands_out_the_wheels_due_keys_with_its_records() -> None:
    clock = Clock(datetime.now(UTC))
    wheel = WakeupWheel(clock)
    wheel.at("t1", clock.now + timedelta(hours=1))
    part = PositionedPartition(Items(["record"]), 0, wheel=wheel)
    assert part.next_batch() == ["record"]
    assert part.next_batch() == []  # caught up, and nothing due yet
    awake = part.next_awake()
    assert awake is not None and awake <= datetime.now(UTC) + timedelta(seconds=1)
    clock.now += timedelta(hours=2)
    assert part.next_batch() == [Woken("t1")]
    assert part.next_batch() == []  # handed out once
    assert part.snapshot() == 0  # a wake-up is not a record: the position stays


def test_wake_ups_reach_the_votes_flow_and_change_no_tally() -> None:
    log = Log()
    post = a_post()
    log.event("votes", post)  # not a vote: ignored by the flow
    for version, user in enumerate((new_id(), new_id()), start=1):
        log.event("votes", a_vote(post, user, 1, version))
    wheel = WakeupWheel()
    items = [*log.messages, Woken(post.post_id), Woken("gone-key")]
    tallies: list[TallyOut] = []
    scores: list[object] = []
    letters: list[object] = []
    flow = votes.build_flow(
        TestingSource(items),
        votes.Sinks(TestingSink(tallies), TestingSink(scores)),  # type: ignore[arg-type]
        TestingSink(letters),  # type: ignore[arg-type]
        wheel=wheel,
    )
    run_main(flow)
    assert letters == []
    assert max(t.value.upvotes for t in tallies) == 2  # type: ignore[attr-defined]
    assert len(wheel) == 1  # the post's eviction waits in the wheel


def test_wake_ups_reach_the_karma_flow_and_change_no_karma() -> None:
    log = Log()
    target = old_vote(timedelta(days=1)).target_id
    log.event("scores", a_score(target, 1, 4))
    wheel = WakeupWheel()
    out: list[object] = []
    letters: list[object] = []
    flow = karma.build_flow(
        TestingSource([*log.messages, Woken(target)]),
        karma.Sinks(TestingSink(out)),  # type: ignore[arg-type]
        TestingSink(letters),  # type: ignore[arg-type]
        wheel=wheel,
    )
    run_main(flow)
    assert letters == []
    assert [k.value.post for k in out] == [4]  # type: ignore[attr-defined]
    assert len(wheel) == 1


def an_upvote(voter: str, author: str) -> Upvote:
    return Upvote(voter, author, new_id(), "post", new_id(), datetime.now(UTC))


def test_a_pair_files_its_forgetting_with_the_wheel_and_goes_when_idle() -> None:
    wheel = WakeupWheel()
    t = Thresholds()
    fold = MutualFold(None, t, wheel)
    voter, author = new_id(), new_id()
    fold.apply(an_upvote(voter, author))
    assert fold.notify_at() is None and len(wheel) == 1
    fold.apply(WAKE)  # early: kept
    assert fold.snapshot() is not None
    fold.touched = datetime.now(UTC) - t.mutual_window - timedelta(seconds=1)
    fold.apply(WAKE)
    assert fold.snapshot() is None and fold.notify_at() is None
    # Filed under the step's prefix and the key the flow keeps the pair by.
    wheel.clock = Clock(datetime.now(UTC) + t.mutual_window + timedelta(minutes=2))
    assert wheel.due() == [spam.PAIR_WAKES + pair_key(voter, author)]


def test_a_wake_up_for_a_pair_or_voter_long_gone_leaves_nothing() -> None:
    pair = MutualFold(None, Thresholds(), WakeupWheel())
    pair.apply(WAKE)
    assert pair.snapshot() is None
    voter = VoterFold(None, 10, timedelta(days=7), WakeupWheel())
    voter.apply(WAKE)
    assert voter.snapshot() is None


def test_a_voter_files_its_forgetting_and_a_ring_member_is_kept() -> None:
    wheel = WakeupWheel()
    fold = VoterFold(None, 10, timedelta(days=7), wheel)
    fold.apply(a_vote(a_post(), new_id(), 1, 1))
    assert fold.notify_at() is None and len(wheel) == 1
    fold.touched = datetime.now(UTC) - timedelta(days=8)
    fold.state.ring_id = "ring-1"
    fold.apply(WAKE)
    assert fold.snapshot() is not None  # a ring member's later votes are still excluded
    fold.state.ring_id = ""
    fold.apply(WAKE)
    assert fold.snapshot() is None


def test_a_snapshot_from_before_keys_were_kept_stays_on_a_bytewax_timer() -> None:
    old = MutualVotes()
    del old.__dict__["pair"]  # the old form: the class default answers
    fold = MutualFold(pickle.loads(pickle.dumps(old)), Thresholds(), WakeupWheel())  # noqa: S301
    assert fold.notify_at() is not None


def excluded(messages: list[Any]) -> set[tuple[str, str]]:
    payloads = [decode(m.value.value)[1] for m in messages]
    return {(p.user_id, p.target_id) for p in payloads if isinstance(p, VoteExcluded)}


def test_the_spam_flow_flags_the_same_with_a_wheel_and_files_pairs_and_voters() -> None:
    log, facts = spam_scenario()
    plain = run_spam(log)
    wheel = WakeupWheel()
    woken = [Woken(spam.PAIR_WAKES + "gone|pair"), Woken(spam.VOTER_WAKES + new_id())]
    out: dict[str, list[Any]] = {k: [] for k in ("trust", "excl", "letters")}
    sinks = spam.Sinks(TestingSink(out["trust"]), TestingSink(out["excl"]))
    flow = spam.build_flow(
        TestingSource([*log.messages, *woken]), sinks, TestingSink(out["letters"]), wheel=wheel
    )
    run_main(flow)
    assert out["letters"] == []
    flags = {(f.signal, f.user_id) for t in out["trust"] for f in t.value.flags}
    assert flags == {(f.signal, f.user_id) for f in plain["flags"]}
    assert {user for signal, user in flags if signal == "vote_ring"} == facts["ring"]
    assert excluded(out["excl"]) == excluded(plain["excl"]) != set()
    later = datetime.now(UTC) + timedelta(days=8)  # past both windows
    wheel.clock = Clock(later)
    assert {key.split(":", 1)[0] for key in wheel.due()} == {"pair", "voter"}


def test_a_vote_after_a_due_wake_up_in_one_batch_starts_the_pair_and_voter_afresh() -> None:
    t = Thresholds()
    pair = MutualFold(None, t, WakeupWheel())
    voter, author = new_id(), new_id()
    pair.apply(an_upvote(voter, author))
    pair.touched = datetime.now(UTC) - t.mutual_window - timedelta(seconds=1)
    pair.apply(WAKE)  # due: the old upvotes are forgotten
    pair.apply(an_upvote(voter, author))  # the same batch: kept, alone
    state = pair.snapshot()
    assert state is not None and [len(w) for w in state.ways.values()] == [1]

    fold = VoterFold(None, 10, timedelta(days=7), WakeupWheel())
    user = new_id()
    fold.apply(a_vote(a_post(), user, 1, 1))
    fold.touched = datetime.now(UTC) - timedelta(days=8)
    fold.apply(WAKE)
    fold.apply(a_vote(a_post(), user, 1, 2))
    kept = fold.snapshot()
    assert kept is not None and len(kept.votes) == 1 and kept.voter == user


# -- ranking: a post's far-off window exits ------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The ranking flow's clock, and the wheels made with it, at T0."""
    clock = Clock(T0)
    monkeypatch.setattr(ranking, "now", clock)
    return clock


DAY_WINDOWS = ("day", "week", "month", "year", "all")


def an_old_post(clock: Clock, age: timedelta) -> PostState:
    post_id = new_id()
    return PostState(post_id, new_id(), clock.now - age, 3, 1, 1, ("week", "month", "year", "all"))


def test_every_ranking_wake_goes_to_the_wheel_a_second_at_most_late(clock: Clock) -> None:
    wheel = WakeupWheel(clock, slot=ranking.WHEEL_SLOT)
    old = an_old_post(clock, timedelta(days=2))
    assert RankFold(old, wheel).notify_at() is None
    assert wheel.next_due() == old.created + timedelta(weeks=1)
    # Under an hour old, its rising is its score: only the hour exit wakes it.
    young = PostState(new_id(), new_id(), T0 - timedelta(minutes=5, seconds=0.5), 2, 0, 1)
    assert RankFold(young, wheel).notify_at() is None
    assert wheel.next_due() == young.created + timedelta(hours=1, seconds=0.5)  # rounded up
    # Three hours old: re-ranked within three minutes, on a ten-second group of the clock.
    decaying = PostState(new_id(), new_id(), T0 - timedelta(hours=3, minutes=1), 2, 0, 1)
    assert RankFold(decaying, wheel).notify_at() is None
    clock.now = T0 + timedelta(minutes=3)
    due = wheel.due()
    assert decaying.post_id in due and young.post_id not in due
    assert len(wheel) == 2
    # Without a wheel (a replay) the same wake is Bytewax's timer.
    wake = RankFold(decaying, None).notify_at()
    assert wake is not None and timedelta(0) < wake - clock.now <= timedelta(minutes=3)
    assert wake.second % 10 == 0 and wake.microsecond == 0


def test_a_decaying_post_woken_re_ranks_and_one_that_is_not_changes_nothing(
    clock: Clock,
) -> None:
    decaying = PostState(new_id(), new_id(), T0 - timedelta(hours=3), 5, 1, 7, DAY_WINDOWS)
    fold = RankFold(decaying, WakeupWheel(clock))
    fold.apply(WAKE)
    (update,) = fold.emit()
    assert update.rising == pytest.approx(4 / 3) and update.rank_seq == 7
    assert update.windows_out == () and not fold.finished()
    for score, age in ((0, timedelta(hours=3)), (2, timedelta(minutes=30))):
        state = PostState(new_id(), new_id(), T0 - age, score, 0, 1, DAY_WINDOWS)
        if age < timedelta(hours=1):
            state.windows = ("hour", *DAY_WINDOWS)
        quiet = RankFold(state, WakeupWheel(clock))
        quiet.apply(WAKE)
        assert list(quiet.emit()) == [], (score, age)


def test_a_post_woken_before_its_exit_changes_nothing(clock: Clock) -> None:
    fold = RankFold(an_old_post(clock, timedelta(days=2)), WakeupWheel(clock))
    fold.apply(WAKE)
    assert list(fold.emit()) == [] and not fold.finished()


def test_a_post_woken_after_its_exit_leaves_the_window_and_files_the_next(
    clock: Clock,
) -> None:
    wheel = WakeupWheel(clock)
    state = an_old_post(clock, timedelta(days=2))
    fold = RankFold(state, wheel)
    clock.now = state.created + timedelta(weeks=1, seconds=30)
    fold.apply(WAKE)
    (update,) = fold.emit()
    assert update.windows_out == ("week",) and update.windows_in == ("month", "year", "all")
    assert (update.upvotes, update.downvotes) == (3, 1)
    assert fold.notify_at() is None and not fold.finished()
    assert wheel.next_due() == state.created + timedelta(days=30)


def test_a_post_woken_after_its_last_exit_is_let_go(clock: Clock) -> None:
    state = an_old_post(clock, timedelta(days=2))
    fold = RankFold(state, WakeupWheel(clock))
    clock.now = state.created + timedelta(days=366)
    fold.apply(WAKE)
    (update,) = fold.emit()
    assert set(update.windows_out) == {"week", "month", "year"}
    assert update.windows_in == ("all",)
    assert fold.finished() and fold.notify_at() is None


def test_a_ranking_wake_up_for_a_post_long_gone_or_hidden_leaves_nothing(
    clock: Clock,
) -> None:
    gone = RankFold(None, WakeupWheel(clock))
    gone.apply(WAKE)
    assert list(gone.emit()) == [] and gone.finished()
    hidden = an_old_post(clock, timedelta(days=2))
    hidden.removed = True
    fold = RankFold(hidden, WakeupWheel(clock))
    clock.now += timedelta(weeks=1)
    fold.apply(WAKE)
    assert list(fold.emit()) == [] and not fold.finished()  # removed: may be approved
    deleted = an_old_post(clock, timedelta(days=2))
    deleted.deleted = True
    gone_for_good = RankFold(deleted, WakeupWheel(clock))
    gone_for_good.apply(WAKE)
    assert list(gone_for_good.emit()) == [] and gone_for_good.finished()  # let go


def test_wake_ups_reach_the_ranking_flow_and_change_no_rank() -> None:
    log = Log()
    post = a_post(created_at=datetime.now(UTC) - timedelta(days=3))
    log.event("posts", post)
    log.event("scores", a_score(post.post_id, 1, 4))
    wheel = WakeupWheel()
    updates: list[Any] = []
    letters: list[object] = []
    flow = ranking.build_flow(
        TestingSource([*log.messages, Woken(post.post_id), Woken("gone-key")]),
        ranking.Sinks(TestingSink(updates), TestingSink([])),
        TestingSink(letters),  # type: ignore[arg-type]
        wheel=wheel,
    )
    run_main(flow)
    assert letters == []
    ranks: list[RankUpdate] = [u.value for u in updates]
    assert [u.score for u in ranks] == [0, 4]  # the wake-ups before the week is out: none
    assert ranks[-1].windows_in == ("week", "month", "year", "all")
    assert len(wheel) == 1  # the post's week exit waits in the wheel
