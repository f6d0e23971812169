"""Karma from tallies: replaced by seq, self-votes left out, per-kind sums."""

from __future__ import annotations

from domain.karma import Karma, KarmaDelta, contribution, replace_tally


def test_self_votes_earn_nothing():
    assert contribution(score=3, author_vote=1) == 2
    assert contribution(score=-2, author_vote=-1) == -1
    assert contribution(score=0, author_vote=0) == 0


def test_tallies_replace_each_other_by_seq():
    held, deltas = replace_tally(None, "a", "post", seq=1, value=1)
    assert deltas == [KarmaDelta("a", "post", 1)]
    held, deltas = replace_tally(held, "a", "post", seq=3, value=4)
    assert deltas == [KarmaDelta("a", "post", 3)]
    for seq in (1, 2, 3):  # re-sent or late tallies change nothing
        again, deltas = replace_tally(held, "a", "post", seq=seq, value=99)
        assert again == held and deltas == []
    held, deltas = replace_tally(held, "a", "post", seq=4, value=4)
    assert deltas == []  # a tally that did not change the contribution
    assert held is not None and held.seq == 4


def test_author_karma_sums_by_kind():
    k = Karma("a").add([KarmaDelta("a", "post", 2), KarmaDelta("a", "comment", -1)])
    k = k.add([KarmaDelta("a", "comment", 5)])
    assert (k.post, k.comment, k.total, k.seq) == (2, 4, 6, 2)
