import itertools
import random

import pytest

from domain.votes import DIRECTIONS, Tally, transition_delta


@pytest.mark.parametrize(
    ("previous", "new", "expected"),
    [
        (0, 1, (1, 0)),
        (0, -1, (0, 1)),
        (0, 0, (0, 0)),
        (1, 1, (0, 0)),
        (1, 0, (-1, 0)),
        (1, -1, (-1, 1)),
        (-1, -1, (0, 0)),
        (-1, 0, (0, -1)),
        (-1, 1, (1, -1)),
    ],
)
def test_all_nine_transitions(previous, new, expected):
    assert transition_delta(previous, new) == expected


def test_invalid_direction_refused():
    with pytest.raises(ValueError):
        transition_delta(0, 2)
    with pytest.raises(ValueError):
        Tally().apply("u", 5, 1)


def test_tally_follows_latest_version_per_user():
    tally = Tally()
    assert tally.apply("a", 1, 10)
    assert tally.apply("b", -1, 11)
    assert tally.apply("a", -1, 12)
    assert (tally.upvotes, tally.downvotes, tally.score) == (0, 2, -2)
    assert tally.seq == 3
    assert tally.direction_of("a") == -1


def test_stale_and_repeated_events_are_ignored():
    tally = Tally()
    tally.apply("a", 1, 20)
    assert not tally.apply("a", -1, 19)  # older change arrives late
    assert not tally.apply("a", 1, 20)  # duplicate
    assert (tally.upvotes, tally.downvotes, tally.seq) == (1, 0, 1)


def test_any_order_of_delivery_converges():
    rng = random.Random(7)
    events = []
    version = 0
    for _ in range(300):
        version += rng.randint(1, 3)
        events.append((f"user{rng.randint(0, 20)}", rng.choice(DIRECTIONS), version))
    expected = Tally()
    for e in events:
        expected.apply(*e)
    for _ in range(20):
        shuffled = events + rng.sample(events, 50)  # reordered and partly duplicated
        rng.shuffle(shuffled)
        tally = Tally()
        for e in shuffled:
            tally.apply(*e)
        assert (tally.upvotes, tally.downvotes) == (expected.upvotes, expected.downvotes)
        assert tally.voters == expected.voters


def test_withdrawn_vote_keeps_version_so_stale_up_cannot_return():
    tally = Tally()
    for user, direction, version in itertools.chain([("a", 1, 1), ("a", 0, 2)], [("a", 1, 1)]):
        tally.apply(user, direction, version)
    assert (tally.upvotes, tally.downvotes) == (0, 0)
