"""The spam dataflow in-process (bytewax.testing): a ring, a spammer and ordinary users
in one stream; the votes dataflow applying the exclusions it publishes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, run_main

from dataflows import spam, votes
from domain.abuse import Flag
from domain.ids import new_id
from domain.votes import Tally
from schemas.envelope import decode
from schemas.events import MemberSanctioned, PostCreated, VoteExcluded
from schemas.topics import POSTS, VOTES
from tests.unit.flows import Log, a_post, a_vote

T0 = datetime(2026, 12, 2, 12, tzinfo=UTC)


def micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def scenario(seed: int = 3) -> tuple[Log, dict[str, Any]]:
    rng = random.Random(seed)
    log = Log()
    communities = [new_id() for _ in range(6)]
    ring = [new_id() for _ in range(3)]
    ordinary = [new_id() for _ in range(12)]
    spammer = new_id()
    posts: list[PostCreated] = []
    clock = T0

    def tick(seconds: float) -> datetime:
        nonlocal clock
        clock += timedelta(seconds=seconds)
        return clock

    for author in ordinary:
        for _ in range(2):
            post = a_post(rng.choice(communities), author_id=author, created_at=tick(20))
            log.event(POSTS.name, post)
            posts.append(post)
    ring_posts = []
    for member in ring:
        for _ in range(3):
            post = a_post(rng.choice(communities), author_id=member, created_at=tick(15))
            log.event(POSTS.name, post)
            ring_posts.append(post)
            for other in ring:
                if other != member:
                    log.event(VOTES.name, a_vote(post, other, 1, micros(tick(2))))
    # ordinary votes, including some reciprocity that stays under the thresholds
    for post in posts:
        for voter in rng.sample(ordinary, 5):
            if voter != post.author_id:
                log.event(VOTES.name, a_vote(post, voter, rng.choice((1, 1, -1)), micros(tick(1))))
    camouflage = []
    for member in ring:
        for post in rng.sample(posts, 4):
            vote = a_vote(post, member, 1, micros(tick(1)))
            camouflage.append(vote)
            log.event(VOTES.name, vote)
    for k in range(5):
        spam_post = a_post(
            communities[k % 5],
            author_id=spammer,
            title=f"Deal {k}",
            body=f"see [this](https://www.cheap-deals{k % 1}.shop/x?k={k}) now",
            created_at=tick(3),
        )
        log.event(POSTS.name, spam_post)
    facts = {"ring": set(ring), "spammer": spammer, "ordinary": set(ordinary), "posts": posts}
    facts["ring_posts"] = ring_posts
    facts["camouflage"] = camouflage
    return log, facts


def run(log: Log) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {k: [] for k in ("trust", "excl", "letters")}
    sinks = spam.Sinks(TestingSink(out["trust"]), TestingSink(out["excl"]))
    run_main(spam.build_flow(log.source(), sinks, TestingSink(out["letters"])))
    out["flags"] = [f for t in out["trust"] for f in t.value.flags]
    out["sanc"] = [s for t in out["trust"] for s in t.value.sanctions]
    return out


def flagged(out: dict[str, list[Any]], signal: str) -> set[str]:
    found: list[Flag] = out["flags"]
    return {f.user_id for f in found if f.signal == signal}


def test_ring_and_spammer_flagged_ordinary_users_not() -> None:
    log, facts = scenario()
    out = run(log)
    assert out["letters"] == []
    assert flagged(out, "vote_ring") == facts["ring"]
    assert flagged(out, "rapid_posting") == {facts["spammer"]}
    assert flagged(out, "link_spam") == {facts["spammer"]}
    ring_flag = next(f for f in out["flags"] if f.signal == "vote_ring")
    assert set(ring_flag.evidence["members"]) == facts["ring"]
    # the flagged targets of a ring member are their own posts that the ring upvoted
    own = {p.post_id for p in facts["ring_posts"] if p.author_id == ring_flag.user_id}
    assert {target for target, _, _ in ring_flag.targets} == own


def test_every_current_vote_of_ring_members_is_excluded() -> None:
    log, facts = scenario()
    out = run(log)
    excluded = [e for t in out["excl"] if isinstance(e := decode(t.value.value)[1], VoteExcluded)]
    assert len(excluded) == len(out["excl"])
    pairs = {(e.user_id, e.target_id) for e in excluded}
    ring_votes = {
        (m, p.post_id) for p in facts["ring_posts"] for m in facts["ring"] if m != p.author_id
    }
    camouflage = {(v.user_id, v.target_id) for v in facts["camouflage"]}
    assert pairs == ring_votes | camouflage
    sanctioned: list[MemberSanctioned] = out["sanc"]
    assert all(s.kind == "shadow_ban" and s.actor_id == "system" for s in sanctioned)
    assert {s.user_id for s in sanctioned} == facts["ring"] | {facts["spammer"]}
    trust = {t.value.user_id: t.value for t in out["trust"]}
    assert set(trust) == facts["ring"] | {facts["spammer"]}
    assert all(trust[m].excluded for m in facts["ring"])


def test_same_input_same_output() -> None:
    log, _ = scenario(5)
    first, second = run(log), run(log)
    key = [(f.user_id, f.signal, f.targets) for f in first["flags"]]
    assert key == [(f.user_id, f.signal, f.targets) for f in second["flags"]]


def test_votes_dataflow_drops_excluded_votes_whatever_the_order() -> None:
    log, facts = scenario()
    out = run(log)
    exclusions = [t.value.value for t in out["excl"]]
    votes_log = [
        m for m in log.messages if isinstance(m, KafkaSourceMessage) and m.topic == VOTES.name
    ]
    post = facts["ring_posts"][0]

    def tallies(records: list[Any]) -> dict[str, tuple[int, int]]:
        replay = Log()
        for r in records:
            replay.raw(VOTES.name, r)
        got: list[Any] = []
        run_main(
            votes.build_flow(
                replay.source(), votes.Sinks(TestingSink(got), TestingSink([])), TestingSink([])
            )
        )
        final: dict[str, tuple[int, int]] = {}
        for t in got:
            final[t.value.target_id] = (t.value.upvotes, t.value.downvotes)
        return final

    after = tallies([m.value for m in votes_log] + exclusions)
    before = tallies(exclusions + [m.value for m in votes_log])
    assert after == before
    assert after[post.post_id] == (0, 0)  # only ring members voted on it


def test_tally_exclusion_commutes() -> None:
    a, b = Tally(), Tally()
    a.apply("u1", 1, 1)
    a.apply("u2", -1, 2)
    a.exclude("u1")
    a.apply("u1", -1, 3)
    b.exclude("u1")
    b.apply("u1", -1, 3)
    b.apply("u2", -1, 2)
    b.apply("u1", 1, 1)
    assert (a.upvotes, a.downvotes) == (b.upvotes, b.downvotes) == (0, 1)
