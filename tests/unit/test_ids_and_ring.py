from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import NotFound
from domain.ids import community_of_post, created_at, new_id, new_post_id
from stores.ring import ShardRing


def test_post_id_carries_its_community():
    community = new_id()
    post_id = new_post_id(community)
    assert community_of_post(post_id) == community


@pytest.mark.parametrize("bad", ["", "abc", "x-y", new_id(), f"{new_id()}-short", "-" * 53])
def test_malformed_post_ids_are_not_found(bad):
    with pytest.raises(NotFound):
        community_of_post(bad)


def test_ids_are_time_ordered():
    first, second = new_id(), new_id()
    assert abs(created_at(first) - datetime.now(UTC)) < timedelta(seconds=5)
    assert first[:10] <= second[:10]


def test_ring_is_deterministic_and_balanced():
    ring = ShardRing(["posts_shard_0", "posts_shard_1"], vnodes=40)
    ids = [new_id() for _ in range(4000)]
    placement = [ring.shard_for(i) for i in ids]
    assert placement == [ShardRing(["posts_shard_0", "posts_shard_1"]).shard_for(i) for i in ids]
    counts = Counter(placement)
    assert set(counts) == {"posts_shard_0", "posts_shard_1"}
    assert min(counts.values()) > 1200


def test_adding_a_shard_moves_about_a_third():
    ids = [new_id() for _ in range(6000)]
    two = ShardRing(["posts_shard_0", "posts_shard_1"])
    three = ShardRing(["posts_shard_0", "posts_shard_1", "posts_shard_2"])
    moved = [i for i in ids if two.shard_for(i) != three.shard_for(i)]
    assert all(three.shard_for(i) == "posts_shard_2" for i in moved)
    assert 0.2 < len(moved) / len(ids) < 0.5


def test_id_checks_agree_with_python_ulid():
    """`is_valid_id` and `created_at` parse by hand for speed: they must answer as the
    library does, for good ids in either case and for every way an id can be bad."""
    from ulid import ULID

    from domain.ids import is_valid_id

    good = [new_id() for _ in range(200)] + ["0" * 26, "7" + "Z" * 25]
    bad_forms = []
    for u in good[:20]:
        bad_forms += [
            u.lower(),
            "8" + u[1:],
            u[:-1] + "I",
            u[:-1] + "l",
            u[:-1] + "O",
            u[:-1] + "u",
            u[:-1] + "_",
            " " + u[1:],
            u + "\n",
            u[:-1],
            u + "0",
            u[:-1] + "\x00",
            u[:-1] + "\uff10",
            "",
        ]
    for value in good + bad_forms:
        try:
            parsed: ULID | None = ULID.from_str(value)
        except ValueError:
            parsed = None
        assert is_valid_id(value) == (parsed is not None), value
        try:  # created_at reads an id's leading ULID, whatever follows it
            expected_time = ULID.from_str(value[:26]).datetime
        except ValueError:  # no ULID there, or one past the year 9999
            expected_time = None
        if expected_time is not None:
            assert created_at(value) == expected_time
        else:
            with pytest.raises(ValueError):
                created_at(value)
