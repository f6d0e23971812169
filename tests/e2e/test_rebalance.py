"""Shard operations: `python -m ops.shards` (`agora shards`) moves communities to a new shard while
the API serves reads and the dataflows write, and an interrupted move resumes.

The module starts and ends with the two-shard ring (see `two_shards`).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from domain.ids import new_id, new_post_id
from stores.placement import load_view, movers
from stores.posts import UPSERT_AGGREGATE, UPSERT_POST
from stores.ring import ShardRing
from stores.shard_tables import discover_tables
from tests.e2e.log_tallies import recompute
from tests.processes import ROOT, wait_for

pytestmark = pytest.mark.slow

NEW_SHARD = "posts_shard_2"


def rebalance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.shards", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def start_rebalance(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ops.shards", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def query(settings, database: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(settings.dsn(database))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def placement_row(settings) -> asyncpg.Record:
    return query(settings, settings.identity_db, "SELECT * FROM shard_placement")[0]


def ring(settings) -> tuple[str, ...]:
    async def run() -> tuple[str, ...]:
        conn = await asyncpg.connect(settings.dsn(settings.identity_db))
        try:
            return (await load_view(conn)).ring
        finally:
            await conn.close()

    return asyncio.run(run())


def every_shard(settings) -> list[str]:
    """All shard databases, retired ones included: a copy left anywhere is found."""
    return [r["name"] for r in query(settings, settings.identity_db, "SELECT name FROM shards")]


def community_ids(settings, names: list[str]) -> dict[str, str]:
    rows = query(
        settings,
        settings.identity_db,
        "SELECT name, community_id FROM communities WHERE name = ANY($1)",
        names,
    )
    return {r["name"]: r["community_id"] for r in rows}


def all_community_ids(settings) -> list[str]:
    rows = query(settings, settings.identity_db, "SELECT community_id FROM communities")
    return [r["community_id"] for r in rows]


def assert_placed_once(settings, post_ids: list[str], voted: set[str]) -> None:
    """Each post and each row about it, in every shard table, is on one shard: the ring's.

    Tables are discovered as the rebalance discovers them, so tables added to the shard
    schema later are checked too; posts must exist, voted posts must have a tally.
    """
    shards = ring(settings)
    shard_ring = ShardRing(shards, settings.ring_vnodes)
    owner = {p: shard_ring.shard_for(p.split("-")[1]) for p in post_ids}

    async def discover() -> list[str]:
        conn = await asyncpg.connect(settings.dsn(shards[0]))
        try:
            tables, _skipped = await discover_tables(conn)
        finally:
            await conn.close()
        return [t.name for t in tables if "post_id" in t.columns]

    for table in asyncio.run(discover()):
        found: dict[str, list[str]] = {p: [] for p in post_ids}
        for shard in every_shard(settings):
            sql = f'SELECT post_id FROM "{table}" WHERE post_id = ANY($1)'
            for r in query(settings, shard, sql, post_ids):
                found[r["post_id"]].append(shard)
        required = (
            set(post_ids) if table == "posts" else voted if table == "post_aggregates" else set()
        )
        wrong = {
            p: shards
            for p, shards in found.items()
            if shards != [owner[p]] and (shards or p in required)
        }
        assert not wrong, f"{table}: post -> shards holding it, expected the ring's only: {wrong}"


def movers_count(settings, old: tuple[str, ...], new: tuple[str, ...]) -> int:
    rings = ShardRing(old, settings.ring_vnodes), ShardRing(new, settings.ring_vnodes)
    return len(movers(all_community_ids(settings), *rings))


def wait_mid_move(settings, proc: subprocess.Popen[str], operation: str) -> None:
    """Until the command has finished at least one range but not the whole move."""

    def mid_move() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the move ended before it was interrupted: {proc.communicate()}")
        row = placement_row(settings)
        return row["operation"] == operation and row["moved_communities"] > 0

    wait_for(mid_move, timeout=120, interval=0.02, what=f"{operation} to be mid-move")


@dataclass
class World:
    communities: dict[str, str]  # name -> id
    posts: list[str]
    voters: list[Any]
    author: Any


def make_world(client, settings, count: int, posts_each: int, voters: int) -> World:
    """`count` communities, at least a third of which the third shard will take."""
    author = client.register("rb")
    two = ring(settings)
    rings = ShardRing(two), ShardRing(tuple(sorted([*two, NEW_SHARD])))
    names: list[str] = []
    while len(names) < count or len(movers(community_ids(settings, names).values(), *rings)) < (
        count // 3
    ):
        assert len(names) < 4 * count, "the ring moves too few communities"
        names.append(client.community(author))
    posts: list[str] = []
    for name in names:
        for i in range(posts_each):
            r = client.http.post(
                f"/communities/{name}/posts",
                json={"title": f"post {name} {i}", "kind": "text", "body": "b"},
                headers=author.headers,
            )
            assert r.status_code == 202, r.text
            posts.append(r.json()["post_id"])
    wait_for(
        lambda: all(client.http.get(f"/posts/{p}").status_code == 200 for p in posts),
        timeout=60,
        what="the world's posts to be readable",
    )
    voting = [client.register("rv") for _ in range(voters)]
    return World(community_ids(settings, names), posts, voting, author)


def tallies(client, posts: list[str]) -> dict[str, tuple[int, int]]:
    out = {}
    for p in posts:
        body = client.get_post(p)
        out[p] = (body["upvotes"], body["downvotes"])
    return out


@pytest.fixture(scope="module")
def two_shards(settings, platform) -> Iterator[None]:
    """The module starts and ends with the two-shard ring.

    Everything that routes reads the ring from the placement, so three shards would do
    for the rest of the suite; draining the third one at the end also keeps code that
    still reads PG_SHARD_DBS directly (maintenance scripts) right.
    """

    def drain() -> None:
        unfinished = placement_row(settings)["operation"]
        if unfinished:  # an earlier run stopped mid-move
            result = rebalance(*unfinished.split())
            assert result.returncode == 0, result.stderr[-3000:]
        if NEW_SHARD in ring(settings):
            result = rebalance("remove-shard", NEW_SHARD)
            assert result.returncode == 0, result.stderr[-3000:]
        assert ring(settings) == tuple(sorted(settings.shard_dbs))

    drain()
    yield
    drain()


def test_an_interrupted_move_resumes_and_places_every_post_once(client, settings, two_shards):
    world = make_world(client, settings, count=9, posts_each=2, voters=3)
    for i, post in enumerate(world.posts):
        assert client.vote(world.voters[i % 3], post, 1).status_code == 200
    voted = set(world.posts)
    expected = recompute(settings.kafka_bootstrap, voted)
    wait_for(lambda: tallies(client, world.posts) == expected, timeout=30, what="tallies")
    two = ring(settings)
    three = tuple(sorted([*two, NEW_SHARD]))
    ranges = str(max(1, movers_count(settings, two, three) // 4))

    # kill -9 mid-move: the placement stays consistent and reads keep working
    proc = start_rebalance("add-shard", NEW_SHARD, "--batch-size", ranges, "--pause", "0.3")
    wait_mid_move(settings, proc, f"add-shard {NEW_SHARD}")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    status = rebalance("status")
    assert f"operation: add-shard {NEW_SHARD}" in status.stdout, status.stdout
    assert tallies(client, world.posts) == expected

    resumed = rebalance("add-shard", NEW_SHARD, "--read-grace", "0.2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming `add-shard posts_shard_2`" in resumed.stdout
    assert ring(settings) == three
    assert_placed_once(settings, world.posts, voted)
    assert tallies(client, world.posts) == expected

    # Ctrl-C mid-move, then re-run: back to two shards
    proc = start_rebalance("remove-shard", NEW_SHARD, "--batch-size", ranges, "--pause", "0.3")
    wait_mid_move(settings, proc, f"remove-shard {NEW_SHARD}")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err[-3000:]
    assert "re-run the same command to resume" in err
    resumed = rebalance("remove-shard", NEW_SHARD, "--read-grace", "0.2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert ring(settings) == two
    assert_placed_once(settings, world.posts, voted)
    assert tallies(client, world.posts) == expected
    verify = rebalance("status", "--verify")
    assert verify.returncode == 0, verify.stdout


@dataclass
class Stream:
    """Posts, votes and reads through the API from a few threads until stopped."""

    client: Any
    world: World
    stop: threading.Event = field(default_factory=threading.Event)
    created: list[str] = field(default_factory=list)
    votes: int = 0
    reads: int = 0
    failures: list[tuple[str, int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _loop(self, step: Callable[[random.Random], None], seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            step(rng)

    def _fail(self, what: str, r: Any) -> None:
        with self.lock:
            self.failures.append((what, r.status_code, r.text[:200]))

    def post(self, rng: random.Random) -> None:
        name = rng.choice(list(self.world.communities))
        r = self.client.http.post(
            f"/communities/{name}/posts",
            json={"title": "live", "kind": "text", "body": f"b {rng.random()}"},
            headers=self.world.author.headers,
        )
        if r.status_code != 202:
            self._fail("post", r)
            return
        with self.lock:
            self.created.append(r.json()["post_id"])
        time.sleep(0.05)

    def vote(self, rng: random.Random) -> None:
        user, post = rng.choice(self.world.voters), rng.choice(self.world.posts)
        r = self.client.vote(user, post, rng.choice((1, 0, -1)))
        if r.status_code != 200:
            self._fail("vote", r)
        with self.lock:
            self.votes += 1

    def read(self, rng: random.Random) -> None:
        post, name = rng.choice(self.world.posts), rng.choice(list(self.world.communities))
        for path in (f"/posts/{post}", f"/communities/{name}/posts"):
            r = self.client.http.get(path)
            if r.status_code != 200:
                self._fail(f"GET {path}", r)
            with self.lock:
                self.reads += 1

    @property
    def threads(self) -> Iterator[threading.Thread]:
        steps = [(self.post, 1), (self.vote, 2), (self.vote, 3), (self.vote, 4), (self.read, 5)]
        for step, seed in steps:
            yield threading.Thread(target=self._loop, args=(step, seed), daemon=True)


def test_add_shard_under_live_posts_and_votes(client, settings, platform, two_shards):
    world = make_world(client, settings, count=9, posts_each=3, voters=12)
    two = ring(settings)
    three = tuple(sorted([*two, NEW_SHARD]))
    moving = movers(world.communities.values(), ShardRing(two), ShardRing(three))
    assert moving, "no community of the world moves; make it larger"
    ranges = str(max(1, math.ceil(movers_count(settings, two, three) / 3)))

    stream = Stream(client, world)
    threads = list(stream.threads)
    for t in threads:
        t.start()
    wait_for(lambda: stream.votes >= 100 and stream.created, timeout=60, what="a live stream")
    before = (len(stream.created), stream.votes, stream.reads)
    started = time.monotonic()
    result = rebalance("add-shard", NEW_SHARD, "--batch-size", ranges)
    seconds = time.monotonic() - started
    during = (len(stream.created) - before[0], stream.votes - before[1], stream.reads - before[2])
    wait_for(lambda: stream.votes >= before[1] + during[1] + 50, timeout=60, what="more votes")
    stream.stop.set()
    for t in threads:
        t.join(30)
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"\n{result.stdout.strip()}\nduring the move ({seconds:.1f}s): posts/votes/reads", during)
    assert all(during), f"the stream did not flow during the move: {during}"
    assert stream.failures == [], stream.failures[:10]
    assert ring(settings) == three

    posts = world.posts + stream.created
    wait_for(
        lambda: all(client.http.get(f"/posts/{p}").status_code == 200 for p in stream.created),
        timeout=60,
        what="every live post to be readable",
    )
    expected = recompute(settings.kafka_bootstrap, set(world.posts))
    wait_for(
        lambda: tallies(client, world.posts) == expected,
        timeout=60,
        what=f"tallies to equal the recomputation {expected}",
    )
    voted = {p for p, (up, down) in expected.items() if up or down}
    assert_placed_once(settings, posts, voted)
    on_new = Counter(ShardRing(three).shard_for(p.split("-")[1]) for p in posts)
    assert on_new[NEW_SHARD] > 0


def test_sweep_brings_a_stray_row_home_and_keeps_the_newer_tally(settings, two_shards):
    """What a writer stalled past its lease could leave on the wrong shard is not lost."""
    community = new_id()
    post = new_post_id(community)
    shards = ring(settings)
    home = ShardRing(shards, settings.ring_vnodes).shard_for(community)
    stray = next(s for s in shards if s != home)
    row = (post, community, "c", "a", "author", "stray", "text", "b", None, None)
    query(settings, stray, UPSERT_POST, *row, datetime.now(UTC), new_id(), None, None)
    query(settings, stray, UPSERT_AGGREGATE, post, community, 4, 1, 3, 5)
    query(settings, home, UPSERT_AGGREGATE, post, community, 1, 0, 1, 2)
    try:
        result = rebalance("sweep")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "relocated 2 misplaced rows" in result.stdout, result.stdout
        assert_placed_once(settings, [post], {post})
        sql = "SELECT score, seq FROM post_aggregates WHERE post_id = $1"
        tally = query(settings, home, sql, post)
        assert [tuple(r) for r in tally] == [(3, 5)]
    finally:
        for shard in every_shard(settings):
            for table in ("posts", "post_aggregates"):
                query(settings, shard, f"DELETE FROM {table} WHERE post_id = $1", post)
