import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ids import new_id, ulid_number, ulid_string
from domain.voter_book import MERGE_MIN, VoterBook
from domain.votes import Tally

ULIDS = [new_id() for _ in range(40)]
# Not canonical ULIDs: kept apart, and never confused with the ULID they resemble.
OTHERS = ["u1", "", ULIDS[0].lower(), "8" + ULIDS[1][1:], ULIDS[2][:-1] + "I", "a\x00b"]


def test_ulids_round_trip_and_anything_else_is_not_one():
    for user in ULIDS:
        number = ulid_number(user)
        assert number is not None and ulid_string(number) == user
    assert all(ulid_number(other) is None for other in OTHERS)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(ULIDS + OTHERS), st.integers(0, 2**62)),
        max_size=300,
    )
)
def test_behaves_as_a_dict_across_merges(ops):
    book, reference = VoterBook(), {}
    for user, packed in ops:
        book[user] = packed
        reference[user] = packed
        assert book.get(user) == packed
    assert book.as_dict() == reference
    assert len(book) == len(reference)
    assert all(book.get(u) == reference.get(u) for u in ULIDS + OTHERS)
    assert all((u in book) == (u in reference) for u in ULIDS + OTHERS)


def test_put_keeps_the_later_version_wherever_the_voter_is_held():
    rng = random.Random(3)
    users = [new_id() for _ in range(MERGE_MIN * 20)] + OTHERS
    book = VoterBook()
    latest: dict[str, int] = {}
    for version in range(1, 5000):
        user = rng.choice(users)
        packed = rng.choice((version, version - 40 if version > 40 else version)) * 4 + 1
        held = latest.get(user)
        stored, previous = book.put(user, packed)
        assert previous == held
        assert stored == (held is None or packed >> 2 > held >> 2)
        if stored:
            latest[user] = packed
    assert book == latest


def test_pickles_compactly_and_exactly():
    book = VoterBook({new_id(): i * 4 for i in range(1000)} | {"legacy": 5})
    blob = pickle.dumps(book)
    assert pickle.loads(blob) == book  # noqa: S301 - our own bytes
    assert len(blob) < 1000 * 30  # 24 bytes a voter, plus the unmerged few


def test_copy_is_independent():
    book = VoterBook({ULIDS[0]: 4})
    twin = book.copy()
    twin[ULIDS[0]] = 8
    twin["other"] = 4
    assert book.get(ULIDS[0]) == 4 and "other" not in book


def test_a_snapshot_from_before_the_voter_book_resumes():
    # The state as the dataflow pickled it when voters were a dict and excluded a set.
    old = Tally.__new__(Tally)
    old.__dict__.update(
        upvotes=1,
        downvotes=1,
        seq=2,
        max_version=9,
        voters={ULIDS[0]: 8 * 4 + 2, ULIDS[1]: 9 * 4 + 0},
        excluded={ULIDS[3]},
    )
    tally = pickle.loads(pickle.dumps(old))  # noqa: S301 - our own bytes
    assert isinstance(tally.voters, VoterBook)
    assert tally.direction_of(ULIDS[0]) == 1 and tally.direction_of(ULIDS[1]) == -1
    assert not tally.apply(ULIDS[0], -1, 8)  # stale against what the old state held
    assert tally.apply(ULIDS[0], -1, 10)
    assert (tally.upvotes, tally.downvotes) == (0, 2)
    assert not tally.exclude(ULIDS[3])


def test_a_version_too_big_to_hold_is_refused_and_changes_nothing():
    """The event schema allows versions up to 2**63 - 1, more than a packed vote in an
    unsigned 64-bit array can take: the vote must be refused (the dataflow dead-letters
    it) before anything changes, or every later merge of the target would fail."""
    tally = Tally()
    for i, user in enumerate(ULIDS[: MERGE_MIN - 1]):
        assert tally.apply(user, 1, i + 1)
    before = (tally.upvotes, tally.downvotes, tally.seq, tally.voters.as_dict())
    with pytest.raises(ValueError):
        tally.apply(ULIDS[MERGE_MIN], 1, 2**63 - 1)
    with pytest.raises(ValueError):
        tally.voters.put("not-a-ulid", -4)
    assert (tally.upvotes, tally.downvotes, tally.seq, tally.voters.as_dict()) == before
    for user in ULIDS[MERGE_MIN : MERGE_MIN + 20]:  # merges still work afterwards
        assert tally.apply(user, -1, 10**6)
    assert tally.downvotes == 20
