"""The pure placement logic: routing through a move's phases, planning ranges, and how
the rebalance treats shard tables it discovers."""

from __future__ import annotations

import pytest

from domain.ids import new_id
from stores.placement import Move, PlacementView, in_range, movers, next_hi
from stores.ring import ShardRing
from stores.shard_tables import (
    ShardTable,
    UnmovableTable,
    community_expression,
    parents_first,
    sequence_column,
)

TWO = ("posts_shard_0", "posts_shard_1")
THREE = ("posts_shard_0", "posts_shard_1", "posts_shard_2")
IDS = sorted(new_id() for _ in range(600))
OLD, NEW = ShardRing(TWO), ShardRing(THREE)
MOVERS = movers(IDS, OLD, NEW)


def view(phase: str, lo: str = "", hi: str | None = None) -> PlacementView:
    return PlacementView(7, TWO, Move("add-shard posts_shard_2", TWO, THREE, phase, lo, hi))  # type: ignore[arg-type]


def test_without_a_move_the_ring_decides_reads_and_writes():
    plain = PlacementView(1, TWO)
    for c in IDS[:50]:
        assert plain.shard_for(c) == OLD.shard_for(c)
        assert plain.write_shards(c) == (OLD.shard_for(c),)
    assert plain.shards == TWO


def test_movers_are_the_communities_whose_owner_changes():
    assert MOVERS == sorted(MOVERS, key=lambda m: m.community_id)
    assert {m.target for m in MOVERS} == {"posts_shard_2"}
    assert 0.2 < len(MOVERS) / len(IDS) < 0.5
    moved = {m.community_id for m in MOVERS}
    assert all(OLD.shard_for(c) == NEW.shard_for(c) for c in IDS if c not in moved)


def test_a_pinned_move_routes_like_the_old_ring_but_holds_pools_for_both():
    pinned = view("pinned")
    for c in IDS:
        assert pinned.shard_for(c) == OLD.shard_for(c)
        assert pinned.write_shards(c) == (OLD.shard_for(c),)
    assert set(pinned.shards) == set(THREE)


def test_phases_of_one_range():
    lo, hi = MOVERS[10].community_id, MOVERS[20].community_id
    inside = [m for m in MOVERS if in_range(m.community_id, lo, hi)]
    below = [m for m in MOVERS if m.community_id < lo]
    above = [m for m in MOVERS if m.community_id >= hi]
    assert len(inside) == 10

    moving = view("moving", lo, hi)
    for m in inside:  # read the old copy, write both (the new owner first)
        assert moving.shard_for(m.community_id) == m.source
        assert moving.write_shards(m.community_id) == (m.target, m.source)
    for m in below:
        assert moving.shard_for(m.community_id) == m.target
        assert moving.write_shards(m.community_id) == (m.target,)
    for m in above:
        assert moving.shard_for(m.community_id) == m.source
        assert moving.write_shards(m.community_id) == (m.source,)

    flipped = view("flipped", lo, hi)
    for m in inside + below:
        assert flipped.shard_for(m.community_id) == m.target
        assert flipped.write_shards(m.community_id) == (m.target,)
    for m in above:
        assert flipped.shard_for(m.community_id) == m.source

    # After the range's old copies are deleted, `pinned` from `hi` routes the same way.
    after = view("pinned", hi)
    for m in MOVERS:
        assert after.shard_for(m.community_id) == flipped.shard_for(m.community_id)


def test_the_last_range_is_open_so_new_communities_are_covered():
    lo = MOVERS[-3].community_id
    later = new_id()  # created during the move: sorts after every planned id
    moving = view("moving", lo, None)
    old, new = OLD.shard_for(later), NEW.shard_for(later)
    expected = (new, old) if old != new else (old,)
    assert moving.write_shards(later) == expected
    done = view("flipped", lo, None)
    assert all(done.shard_for(c) == NEW.shard_for(c) for c in [*IDS, later])


def test_communities_that_stay_never_change_route_during_a_move():
    stay = [c for c in IDS if OLD.shard_for(c) == NEW.shard_for(c)]
    for phase in ("pinned", "moving", "flipped"):
        v = view(phase, IDS[100], IDS[300])
        assert all(v.write_shards(c) == (OLD.shard_for(c),) for c in stay)


def test_ranges_hold_batch_size_movers_and_the_last_is_unbounded():
    ids = [m.community_id for m in MOVERS]
    bounds, lo = [], ""
    while (hi := next_hi(ids, lo, 25)) is not None:
        assert sum(in_range(c, lo, hi) for c in ids) == 25
        bounds.append(hi)
        lo = hi
    assert 0 < sum(c >= lo for c in ids) <= 25
    assert len(bounds) == (len(ids) - 1) // 25
    assert next_hi([], "", 10) is None


def test_tables_name_their_community_by_column_or_by_post_id():
    assert community_expression(["post_id", "community_id", "score"]) == '"community_id"'
    assert community_expression(["post_id", "hot"]) == "split_part(\"post_id\", '-', 2)"
    assert community_expression(["version", "name"]) is None


def test_merges_keep_the_newer_seq_or_the_existing_row():
    aggregates = ShardTable(
        "post_aggregates", ("post_id", "community_id", "score", "seq"), ("post_id",), "c"
    )
    sql = aggregates.merge_sql("staging")
    assert 'ON CONFLICT ("post_id") DO UPDATE SET' in sql
    assert '"score" = EXCLUDED."score"' in sql
    assert sql.endswith('WHERE "post_aggregates"."seq" < EXCLUDED."seq"')
    posts = ShardTable("posts", ("post_id", "community_id", "title"), ("post_id",), "c")
    assert posts.merge_sql("staging").endswith('ON CONFLICT ("post_id") DO NOTHING')
    columns = ("post_id", "community_id", "hot", "rank_seq")
    ranks = ShardTable("post_ranks", columns, ("post_id",), "c")
    assert ranks.merge_sql("s").endswith('WHERE "post_ranks"."rank_seq" < EXCLUDED."rank_seq"')
    assert sequence_column(["a_seq", "b_seq"]) is None


def test_referenced_tables_are_copied_first():
    def table(name: str, *parents: str) -> ShardTable:
        return ShardTable(name, ("post_id",), ("post_id",), "c", parents)

    order = [t.name for t in parents_first([table("ranks", "posts"), table("posts")])]
    assert order == ["posts", "ranks"]
    with pytest.raises(UnmovableTable):
        parents_first([table("a", "b"), table("b", "a")])
