"""Materialised paths, Wilson / controversy scores and tree arrangement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.comments import (
    MAX_DEPTH,
    Comment,
    arrange,
    child_path,
    depth,
    parent_path,
    subtree_bounds,
    wilson_lower_bound,
)
from domain.errors import NotFound, ValidationFailed
from domain.ids import new_comment_id, new_id, new_post_id, post_of_comment
from domain.ranking import controversy

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_paths_sort_in_tree_order_and_give_depth():
    a = child_path("", 1)
    a2 = child_path(a, 2)
    a10 = child_path(a, 10)
    b = child_path("", 2)
    assert (a, a2) == ("000001", "000001.000002")
    assert sorted([b, a10, a2, a]) == [a, a2, a10, b]  # parent, its subtree, then next
    assert (depth(a), depth(a2)) == (0, 1)
    assert (parent_path(a2), parent_path(a)) == (a, "")
    low, high = subtree_bounds(a)
    assert all(low <= p < high for p in (a2, a10)) and not low <= b < high
    assert not low <= a < high


def test_reply_depth_is_bounded():
    path = ""
    for _ in range(MAX_DEPTH + 1):
        path = child_path(path, 1)
    assert depth(path) == MAX_DEPTH
    with pytest.raises(ValidationFailed):
        child_path(path, 1)


def test_comment_ids_carry_their_post():
    post_id = new_post_id(new_id())
    comment_id = new_comment_id(post_id)
    assert post_of_comment(comment_id) == post_id
    for bad in ("x", post_id, f"{new_id()}-garbage", "-".join([new_id()] * 2)):
        with pytest.raises(NotFound):
            post_of_comment(bad)


# Computed by hand from the Wilson interval with z = 1.281551565545 (80%):
# (p + z²/2n - z·sqrt((p(1-p) + z²/4n)/n)) / (1 + z²/n).
# e.g. 1 up: (1 + z²/2 - z²/2) / (1 + z²) = 1 / 2.642374 = 0.378448.
WILSON = {
    (0, 0): 0.0,
    (1, 0): 0.378448,
    (2, 0): 0.549092,
    (4, 1): 0.513541,
    (5, 2): 0.472463,
    (10, 5): 0.501220,
    (100, 5): 0.918083,
    (3, 3): 0.268211,
    (0, 1): 0.0,
}


@pytest.mark.parametrize(("votes", "expected"), sorted(WILSON.items()))
def test_wilson_lower_bound_matches_hand_computed_values(votes, expected):
    assert wilson_lower_bound(*votes) == pytest.approx(expected, abs=1e-6)


def test_controversy_rewards_many_evenly_split_votes():
    assert controversy(5, 0) == 0 and controversy(0, 5) == 0
    assert controversy(1, 1) == 2.0
    assert controversy(4, 1) == pytest.approx(5**0.25)
    assert controversy(50, 50) > controversy(60, 40) > controversy(90, 10)


def comment(path: str, up: int = 0, down: int = 0, minutes: int = 0) -> Comment:
    return Comment(
        comment_id=f"c{path}",
        parent_id=f"c{parent_path(path)}" if "." in path else None,
        path=path,
        author="a",
        body="b",
        deleted=False,
        created_at=T0 + timedelta(minutes=minutes),
        upvotes=up,
        downvotes=down,
    )


def ids(threads) -> list[str]:
    return [t.comment.path for t in threads]


THREAD = [
    comment("000001", 2, 0, minutes=1),  # best 0.549, top 2
    comment("000002", 4, 1, minutes=2),  # best 0.514, top 3, controversy 1.50
    comment("000003", 1, 0, minutes=3),  # best 0.378, top 1
    comment("000004", 1, 1, minutes=4),  # best 0.164, top 0, controversy 2
    comment("000005", 0, 0, minutes=5),  # 0
    comment("000001.000001", 0, 0, minutes=6),
    comment("000001.000002", 3, 0, minutes=7),
    comment("000001.000002.000001", 1, 5, minutes=8),
    comment("000001.000002.000002", 5, 1, minutes=9),
    comment("000001.000002.000002.000001", minutes=10),
]


@pytest.mark.parametrize(
    ("sort", "roots", "under_first", "under_its_best"),
    [
        ("best", ["000001", "000002", "000003", "000004", "000005"], "000001.000002", "000002"),
        ("top", ["000002", "000001", "000003", "000004", "000005"], "000001.000002", "000002"),
        ("new", ["000005", "000004", "000003", "000002", "000001"], "000001.000002", "000002"),
        ("controversial", ["000004", "000002", "000001", "000003", "000005"], None, None),
    ],
)
def test_siblings_are_sorted_at_every_level(sort, roots, under_first, under_its_best):
    threads, left = arrange(THREAD, sort, levels=3, limit=10)
    assert ids(threads) == roots and left == 0
    first = next(t for t in threads if t.comment.path == "000001")
    if under_first:
        assert ids(first.children)[0] == under_first
        nested = first.children[0]
        assert ids(nested.children)[0] == f"{under_first}.{under_its_best}"


def test_depth_limit_counts_the_replies_left_out():
    threads, _ = arrange(THREAD, "top", levels=2, limit=10)
    first = next(t for t in threads if t.comment.path == "000001")
    assert len(first.children) == 2 and first.more_children == 0
    second_level = next(t for t in first.children if t.comment.path == "000001.000002")
    assert second_level.children == [] and second_level.more_children == 2


def test_limit_and_offset_page_the_first_level():
    page1, left1 = arrange(THREAD, "new", levels=1, limit=2)
    page2, left2 = arrange(THREAD, "new", levels=1, limit=2, offset=2)
    page3, left3 = arrange(THREAD, "new", levels=1, limit=2, offset=4)
    assert ids(page1 + page2 + page3) == ["000005", "000004", "000003", "000002", "000001"]
    assert (left1, left2, left3) == (3, 1, 0)
    assert page1[0].more_children == 0
    assert next(t for t in page3 if t.comment.path == "000001").more_children == 2


def test_a_subtree_loads_on_demand():
    threads, left = arrange(THREAD, "best", levels=5, limit=10, under="000001.000002")
    assert ids(threads) == ["000001.000002.000002", "000001.000002.000001"] and left == 0
    assert ids(threads[0].children) == ["000001.000002.000002.000001"]


def test_unknown_sort_is_refused():
    with pytest.raises(ValidationFailed):
        arrange(THREAD, "hot", levels=1, limit=1)
