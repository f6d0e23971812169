"""The spam dataflow on the real stack: a seeded workload (ordinary users, a spammer and
two small vote rings) through the API; the ring and the spammer are flagged, ordinary
users are not; ring votes stop counting and replaying the votes topic through the
votes dataflow gives the same tallies whatever order its partitions come in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main
from confluent_kafka import Consumer, TopicPartition

from benchmarks.workload import Driver, Truth, WorkloadConfig, generate
from dataflows import votes
from dataflows.common import SourceItem
from domain.ids import new_id
from schemas.topics import VOTES
from stores.kafka_admin import end_offsets
from stores.pii import EmailVault
from stores.users import UserStore
from tests.e2e.conftest import Client
from tests.e2e.log_tallies import recompute
from tests.processes import wait_for

CONFIG = WorkloadConfig(
    seed=11,
    users=24,
    communities=5,
    posts=24,
    votes_per_post=4,
    comments=10,
    spammers=1,
    spam_posts=6,
    rings=(3, 4),
    ring_posts=3,
    camouflage_votes=4,
    duration=20,
)


def identity_rows(settings, query: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(settings.dsn(settings.identity_db))
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


# the workload takes about a minute on a quiet machine, several on a busy one
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def driven(platform, client: Client) -> Iterator[tuple[Truth, dict[str, str], dict[str, str]]]:
    # a fresh tag: the same seed, new accounts (the stack keeps earlier runs' flags)
    workload = generate(replace(CONFIG, tag=new_id()[-4:].lower()))
    driver = Driver(platform.base, workload, speed=1.0)
    truth = driver.run()
    assert truth.outcomes.get("vote 200", 0) > 50, truth.outcomes
    names = sorted({a.actor for a in workload.actions if a.kind == "register"})
    ids = {name: user_id_of(settings_of(platform), name) for name in names}
    owners = {a.community: a.actor for a in workload.actions if a.kind == "community"}
    yield truth, ids, {c: driver.tokens[o] for c, o in owners.items()}


def settings_of(_platform: Any) -> Any:
    from stores.settings import get_settings

    return get_settings()


def user_id_of(settings: Any, username: str) -> str:
    async def run() -> str:
        pool = await asyncpg.create_pool(settings.dsn(settings.identity_db), min_size=1, max_size=1)
        try:
            vault = EmailVault(settings.email_encryption_key, settings.email_hash_key)
            user = await UserStore(pool, vault).find_user_by_login(username)
            assert user is not None, username
            return user.user_id
        finally:
            await pool.close()

    return asyncio.run(run())


def test_trust_is_never_public(driven, client: Client) -> None:
    truth, _ids, _owners = driven
    for name in truth.rings[0] + truth.spammers + truth.ordinary[:3]:
        r = client.http.get(f"/users/{name}")
        assert r.status_code == 200, r.text
        assert "trust" not in r.text.lower()


def flagged_among(settings, signal: str, among: set[str]) -> set[str]:
    """Accounts of this workload flagged for `signal` (the log holds other tests' too)."""
    rows = identity_rows(
        settings, "SELECT DISTINCT user_id FROM abuse_flags WHERE signal = $1", signal
    )
    return {r["user_id"] for r in rows} & among


def test_ring_and_spammer_flagged_ordinary_users_not(driven, settings, client: Client) -> None:
    truth, ids, owners = driven
    ring_members = {ids[m] for ring in truth.rings for m in ring}
    spammers = {ids[s] for s in truth.spammers}
    mine = set(ids.values())

    def flagged(signal: str) -> set[str]:
        return flagged_among(settings, signal, mine)

    wait_for(
        lambda: flagged("vote_ring") >= ring_members,
        timeout=90,
        what="both rings flagged",
    )
    wait_for(
        lambda: flagged("link_spam") >= spammers and flagged("rapid_posting") >= spammers,
        timeout=60,
        what="the spammer flagged",
    )
    assert flagged("vote_ring") == ring_members
    assert flagged("link_spam") == spammers
    assert flagged("rapid_posting") == spammers
    trust = {
        r["user_id"]: r["score"]
        for r in identity_rows(settings, "SELECT user_id, score FROM account_trust")
    }
    assert all(trust[m] < 0.2 for m in ring_members | spammers)
    ordinary = {ids[u] for u in truth.ordinary}
    assert not ordinary & set(trust)
    # moderators see the flagged posts in their queue, with the evidence and the trust
    queued = 0
    for post_id in truth.spam_posts + truth.ring_posts:
        community = client.get_post(post_id)["community"]
        headers = {"Authorization": f"Bearer {owners[community]}"}
        r = client.http.get(f"/communities/{community}/moderation/queue", headers=headers)
        assert r.status_code == 200, r.text
        items = {i["target_id"]: i for i in r.json()["items"]}
        if post_id in items:
            queued += 1
            assert "spam" in items[post_id]["kinds"]
            evidence = items[post_id]["evidence"][0]
            assert evidence["signal"] in ("vote_ring", "rapid_posting", "link_spam")
            assert evidence["trust"] < 0.2
    assert queued >= len(truth.spam_posts)


def test_ring_votes_stop_counting_and_a_replay_agrees(driven, settings, client: Client) -> None:
    truth, _ids, _owners = driven

    def ring_posts_at_zero() -> bool:
        return all(client.get_post(p)["score"] == 0 for p in truth.ring_posts)

    # ring posts got votes from ring members only
    wait_for(ring_posts_at_zero, timeout=90, what="ring votes excluded from ring posts")
    targets = set(truth.posts.values())
    expected = recompute(settings.kafka_bootstrap, targets)

    def api_agrees() -> bool:
        for post_id, (up, down) in expected.items():
            post = client.get_post(post_id)
            if (post["upvotes"], post["downvotes"]) != (up, down):
                return False
        return True

    wait_for(api_agrees, timeout=60, what="API tallies equal to the log's (with exclusions)")
    # the votes dataflow replayed over the real votes topic, partitions in two orders
    records = votes_topic(settings.kafka_bootstrap)
    forward = replay(records)
    backward = replay(sorted(records, key=lambda m: (-(m.partition or 0), m.offset or 0)))
    assert forward == backward
    # a post nobody voted on has no tally
    assert {t: forward.get(t, (0, 0)) for t in targets} == expected


def votes_topic(bootstrap: str) -> list[KafkaSourceMessage[bytes | None, bytes | None]]:
    ends = end_offsets(bootstrap, VOTES.name)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "spam-replay", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(VOTES.name, p, 0) for p in ends])
    out: list[KafkaSourceMessage[bytes | None, bytes | None]] = []
    remaining = {p for p, end in ends.items() if end > 0}
    try:
        while remaining:
            for msg in consumer.consume(500, timeout=5):
                if msg.error():
                    continue
                p, o = msg.partition() or 0, msg.offset() or 0
                if o >= ends[p]:
                    continue
                if o >= ends[p] - 1:
                    remaining.discard(p)
                out.append(
                    KafkaSourceMessage(
                        key=msg.key(), value=msg.value(), topic=VOTES.name, partition=p, offset=o
                    )
                )
    finally:
        consumer.close()
    return sorted(out, key=lambda m: (m.partition or 0, m.offset or 0))


def replay(
    records: list[KafkaSourceMessage[bytes | None, bytes | None]],
) -> dict[str, tuple[int, int]]:
    got: list[Any] = []
    items: list[SourceItem] = list(records)
    flow = votes.build_flow(
        TestingSource(items),
        votes.Sinks(TestingSink(got), TestingSink([])),
        TestingSink([]),
    )
    run_main(flow)
    final: dict[str, tuple[int, int]] = {}
    for t in got:
        final[t.value.target_id] = (t.value.upvotes, t.value.downvotes)
    return final
