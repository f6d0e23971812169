"""Fault drills on real servers.

- One Postgres shard stops accepting connections: communities on the other shard keep
  answering reads and taking writes, `/readyz` names the shard, nothing is
  dead-lettered meanwhile (the dataflows wait), and once it is back every post
  accepted during the outage is materialised.
- Redis restarts with its data lost: `agora rebuild rankings` restores the read models,
  the users vote again, and no vote is counted twice (the tallies equal the log).

(A Kafka restart under a vote stream is `test_broker_outage.py`.)"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator

import asyncpg
import httpx
import pytest

from stores.placement import load_view, shard_names
from tests.e2e.log_tallies import recompute
from tests.e2e.test_recovery_replay import stored_tallies
from tests.processes import ROOT, wait_for

pytestmark = pytest.mark.slow


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


async def shard_of(settings, community_id: str) -> str:
    conn = await asyncpg.connect(settings.dsn(settings.identity_db))
    try:
        return (await load_view(conn, settings.ring_vnodes)).shard_for(community_id)
    finally:
        await conn.close()


async def set_connections(settings, database: str, allowed: bool) -> None:
    conn = await asyncpg.connect(settings.dsn(settings.identity_db))
    try:
        await conn.execute(
            f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}'
        )
        if not allowed:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                database,
            )
    finally:
        await conn.close()


@pytest.fixture
def shard_outage(settings) -> Iterator[str]:
    down = sorted(asyncio.run(shard_names(settings)))[-1]
    yield down
    asyncio.run(set_connections(settings, down, True))


def test_one_shard_down_the_other_keeps_working(client, platform, settings, shard_outage):
    owner = client.register("fs")
    # A community on each shard.
    names: dict[str, str] = {}
    while len(names) < 2:
        name = client.community(owner)
        cid = client.community_info(name)["community_id"]
        names.setdefault(asyncio.run(shard_of(settings, cid)), name)
    up_name = next(n for s, n in names.items() if s != shard_outage)
    down_name = names[shard_outage]
    before = client.post(owner, up_name, "before the outage")

    def listed() -> bool:
        items = client.listing(f"/communities/{up_name}/posts?sort=new")["items"]
        return any(i["post_id"] == before for i in items)

    wait_for(listed, timeout=30, what="the post in its listing")
    asyncio.run(set_connections(settings, shard_outage, False))

    ready = httpx.get(f"{platform.base}/readyz")
    assert ready.status_code == 503 and f"postgres_{shard_outage}" in ready.text
    assert client.get_post(before)["title"] == "before the outage"
    assert listed()
    accepted = []
    for name in (up_name, down_name):
        r = client.http.post(
            f"/communities/{name}/posts",
            json={"title": "during the outage", "kind": "text", "body": f"b {name}"},
            headers=owner.headers,
        )
        assert r.status_code == 202, r.text
        accepted.append(r.json()["post_id"])

    asyncio.run(set_connections(settings, shard_outage, True))

    def readable(post_id: str) -> Callable[[], bool]:
        return lambda: client.http.get(f"/posts/{post_id}").status_code == 200

    for post_id in accepted:
        wait_for(readable(post_id), timeout=90, what=f"post {post_id} accepted during the outage")
    letters = run("agora", "dataflow", "dead-letters", "--dataflow", "content")
    assert not any(p in letters.stdout for p in accepted)
    for flow, proc in platform.flows.items():
        assert proc.alive(), f"{flow} exited:\n{proc.log_tail()}"


def redis_up() -> bool:
    status = run("bash", "deploy/stack.sh", "status").stdout
    return re.search(r"^redis\s+up\s", status, re.MULTILINE) is not None


def test_redis_data_lost_is_rebuilt_without_double_counting(client, platform, settings):
    if not redis_up():
        pytest.skip("Redis is not run by deploy/stack.sh from this state folder")
    owner = client.register("fr")
    voters = [client.register("rv") for _ in range(4)]
    name = client.community(owner)
    posts = [client.post(owner, name, f"redis {i}") for i in range(2)]
    for voter in voters:
        for post in posts:
            assert client.vote(voter, post, 1).status_code == 200
    expected = recompute(settings.kafka_bootstrap, set(posts))
    wait_for(lambda: stored_tallies(client, posts) == expected, timeout=60, what="tallies")

    stopped = run("bash", "deploy/stack.sh", "stop", "redis")
    assert stopped.returncode == 0, stopped.stderr
    state = ROOT / ".state" / "redis"
    try:
        (state / "dump.rdb").unlink(missing_ok=True)
        shutil.rmtree(state / "appendonlydir", ignore_errors=True)
    finally:
        started = run("bash", "deploy/stack.sh", "start", "redis")
        assert started.returncode == 0, started.stderr

    rebuilt = run("agora", "rebuild", "rankings", timeout=600)
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    listing = client.listing(f"/communities/{name}/posts?sort=new")
    assert {i["post_id"] for i in listing["items"]} == set(posts)

    # The same users vote the same way again: Redis forgot their votes, the log did not.
    for voter in voters:
        for post in posts:
            assert client.vote(voter, post, 1).status_code == 200
    expected = recompute(settings.kafka_bootstrap, set(posts))
    assert all(up == len(voters) for up, _ in expected.values())
    wait_for(lambda: stored_tallies(client, posts) == expected, timeout=60, what="tallies")
