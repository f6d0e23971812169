"""The poison suite: bad records of every kind on every topic the dataflows read,
between good events. Every dataflow keeps running, every good event's effect is
visible, and each bad record is listed by `dead-letters` exactly once per dataflow
that read it, also after a crash and resume."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Producer

from domain.ids import new_comment_id, new_id, new_post_id
from schemas.envelope import encode, new_event
from schemas.events import (
    CommentCreated,
    CommunityCreated,
    MembershipChanged,
    Payload,
    PostCreated,
    PostPinned,
    ScoreChanged,
    VoteCast,
)
from tests.processes import ROOT, wait_for

READERS = {
    "posts": ("content", "ranking", "mentions", "spam", "search"),
    "comments": ("content", "mentions", "spam"),
    "votes": ("votes", "spam"),
    "scores": ("ranking", "karma", "search"),
    "communities": ("ranking", "search"),
    "users": ("content", "search"),
    "moderation": ("content", "ranking", "mentions", "spam", "search"),
    "media": ("media",),
}
Ref = tuple[str, int, int]  # topic, partition, offset


class Log:
    """Produces to the real topics and remembers where each record landed."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})

    def raw(self, topic: str, value: bytes | None, key: str = "poison") -> Ref:
        landed: list[Ref] = []

        def delivered(err: Any, msg: Any) -> None:
            assert err is None, err
            landed.append((msg.topic(), msg.partition(), msg.offset()))

        self.producer.produce(topic, value=value, key=key.encode(), on_delivery=delivered)
        assert self.producer.flush(15) == 0
        return landed[0]

    def event(self, topic: str, payload: Payload, key: str) -> Ref:
        return self.raw(topic, encode(new_event(payload, key=key)), key)

    def forged(self, topic: str, payload: Payload, key: str, **changes: Any) -> Ref:
        """The payload with fields changed past the producer's own validation."""
        envelope = new_event(payload, key=key)
        forged = envelope.model_copy(update={"payload": {**envelope.payload, **changes}})
        return self.raw(topic, forged.model_dump_json().encode(), key)


def listed(dataflow: str | None = None) -> list[tuple[str, Ref, str]]:
    """`python -m dataflows dead-letters` as an operator runs it."""
    args = [sys.executable, "-m", "dataflows", "dead-letters"]
    if dataflow:
        args += ["--dataflow", dataflow]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    rows = []
    for line in out.stdout.splitlines():
        m = re.match(r"^(\S+)\s+([\w.-]*):(-?\d+):(-?\d+)\s+(.*)$", line)
        assert m, line
        rows.append((m[1], (m[2], int(m[3]), int(m[4])), m[5]))
    return rows


def post_payload(community: dict[str, Any], author: Any, title: str, **extra: Any) -> PostCreated:
    return PostCreated(
        post_id=new_post_id(community["community_id"]),
        community_id=community["community_id"],
        community_name=community["name"],
        author_id=author.user_id,
        author_name=author.username,
        title=title,
        kind="text",
        body=extra.pop("body", "fine"),
        created_at=datetime.now(UTC),
        **extra,
    )


@pytest.fixture(scope="module")
def poisoned(client, platform, settings) -> dict[str, Any]:
    """Bad records of every kind between good ones; what was produced where."""
    log = Log(settings.kafka_bootstrap)
    owner, voter = client.register("po"), client.register("pv")
    name = client.community(owner)
    community = client.community_info(name)
    cid = community["community_id"]
    good_post = client.post(owner, name, "before the poison")
    bad: list[Ref] = []

    def add(ref: Ref) -> None:
        bad.append(ref)

    template = post_payload(community, owner, "template")
    comment = CommentCreated(
        comment_id=new_comment_id(good_post),
        post_id=good_post,
        community_id=cid,
        path="000999",
        author_id=owner.user_id,
        author_name=owner.username,
        body="template",
        created_at=datetime.now(UTC),
    )
    vote = VoteCast(
        user_id=voter.user_id,
        target_id=good_post,
        target_type="post",
        community_id=cid,
        author_id=owner.user_id,
        direction=1,
        previous=0,
        version=1,
    )
    score = ScoreChanged(
        target_id=good_post,
        target_type="post",
        community_id=cid,
        author_id=owner.user_id,
        upvotes=1,
        downvotes=0,
        score=1,
        seq=1,
        version=1,
    )
    pinned = PostPinned(
        community_id=cid, post_id=good_post, pinned=True, pins=[good_post], actor_id=owner.user_id
    )
    created = CommunityCreated(
        community_id=cid,
        name=name,
        description="d",
        visibility="public",
        creator_id=owner.user_id,
        created_at=datetime.now(UTC),
    )
    member = MembershipChanged(community_id=cid, user_id=voter.user_id, joined=True, member_count=2)
    huge = "x" * 200_000
    poison: list[Callable[[], Ref]] = [
        # undecodable, empty and not-an-envelope records on every topic
        *(lambda t=t: log.raw(t, b"\xff\xfe\x00 not json") for t in READERS),
        *(lambda t=t: log.raw(t, None) for t in READERS),
        *(lambda t=t: log.raw(t, b'{"event_id": 7, "type": []}') for t in READERS),
        # posts: NUL, control characters, schema, ids, oversized
        lambda: log.forged("posts", template, cid, body="a\u0000b"),
        lambda: log.forged("posts", template, cid, title="bell\u0007"),
        lambda: log.forged("posts", template, cid, title=huge),
        lambda: log.forged("posts", template, cid, kind="poll"),
        lambda: log.forged("posts", template, cid, post_id="x"),
        lambda: log.forged("posts", template, cid, community_id=new_id()),
        lambda: log.forged("posts", template, cid, created_at="yesterday"),
        lambda: log.forged("posts", template, cid, surprise=1),
        # comments
        lambda: log.forged("comments", comment, good_post, body="a\u0000b"),
        lambda: log.forged("comments", comment, good_post, body=huge),
        lambda: log.forged("comments", comment, good_post, comment_id="nope"),
        lambda: log.forged("comments", comment, good_post, path="1.2"),
        lambda: log.forged("comments", comment, good_post, parent_id=new_comment_id(new_id())),
        # votes
        lambda: log.forged("votes", vote, good_post, target_id="x"),
        lambda: log.forged("votes", vote, good_post, direction=7),
        lambda: log.forged("votes", vote, good_post, version=2**70),
        lambda: log.forged("votes", vote, good_post, version=-5),
        lambda: log.forged("votes", vote, good_post, user_id="u\u0000"),
        lambda: log.forged("votes", vote, good_post, target_type="comment"),
        # scores
        lambda: log.forged("scores", score, good_post, upvotes=2**40, score=2**40),
        lambda: log.forged("scores", score, good_post, downvotes=-1, score=2),
        lambda: log.forged("scores", score, good_post, score=99),
        lambda: log.forged("scores", score, good_post, target_id="x"),
        # communities
        lambda: log.forged("communities", pinned, cid, pins=["x"]),
        lambda: log.forged("communities", pinned, cid, pins=[good_post] * 50),
        lambda: log.forged("communities", created, cid, description="\u0000"),
        lambda: log.forged("communities", member, cid, member_count=-3),
        lambda: log.forged("communities", member, cid, community_id="x"),
    ]
    goods: list[str] = []
    for i, make in enumerate(poison):
        add(make())
        if i % 6 == 0:  # good events between the bad ones
            payload = post_payload(community, owner, f"good {i}")
            log.event("posts", payload, cid)
            goods.append(payload.post_id)
    assert client.vote(voter, good_post, 1).status_code == 200
    after = client.post(owner, name, "after the poison")
    return {"bad": bad, "goods": [*goods, after], "good_post": good_post, "voter": voter}


def expected(bad: list[Ref]) -> set[tuple[str, Ref]]:
    return {(dataflow, ref) for ref in bad for dataflow in READERS[ref[0]]}


def test_good_events_flow_and_no_dataflow_exits(client, platform, poisoned) -> None:
    def readable(post_id: str) -> Callable[[], bool]:
        return lambda: client.http.get(f"/posts/{post_id}").status_code == 200

    for post_id in poisoned["goods"]:
        wait_for(readable(post_id), timeout=30, what=f"good post {post_id}")
    wait_for(
        lambda: client.get_post(poisoned["good_post"])["score"] == 1,
        timeout=30,
        what="the good vote's tally",
    )
    for name, proc in platform.flows.items():
        assert proc.alive(), f"{name} exited:\n{proc.log_tail()}"


def test_each_bad_record_is_listed_once_per_dataflow(platform, poisoned) -> None:
    want = expected(poisoned["bad"])

    def all_listed() -> list[tuple[str, Ref, str]] | None:
        rows = listed()
        have = {(d, ref) for d, ref, _ in rows}
        return rows if want <= have else None

    rows = wait_for(all_listed, timeout=60, interval=1, what="every bad record listed")
    ours = [(d, ref) for d, ref, _ in rows if ref in set(poisoned["bad"])]
    assert Counter(ours) == Counter(want)  # once each, and only by dataflows that read it
    reasons = {(d, ref): reason for d, ref, reason in rows}
    nul_post = poisoned["bad"][len(READERS) * 3]
    assert "U+0000" in reasons[("content", nul_post)]
    for name, proc in platform.flows.items():
        assert proc.alive(), f"{name} exited:\n{proc.log_tail()}"


def test_listing_filters_by_dataflow(poisoned) -> None:
    votes_only = listed("votes")
    assert votes_only and {d for d, _, _ in votes_only} == {"votes"}


def test_still_listed_once_after_a_crash_and_resume(client, platform, poisoned) -> None:
    content = platform.flows["content"]
    content.kill9()
    platform.restart_flow("content")
    # Resumed from its last snapshot, it may record some dead letters again; the
    # listing still shows each record once, and new posts still flow.
    owner = client.register("pr")
    name = client.community(owner)
    client.post(owner, name, "after the resume")
    rows = listed("content")
    ours = [ref for _, ref, _ in rows if ref in set(poisoned["bad"])]
    assert len(ours) == len(set(ours))
    assert set(ours) == {ref for d, ref in expected(poisoned["bad"]) if d == "content"}
    assert platform.flows["content"].alive()


def test_republish_copies_the_original_record_to_the_end_of_its_topic(settings, poisoned) -> None:
    from confluent_kafka import Consumer, TopicPartition

    ref = poisoned["bad"][0]  # undecodable bytes on the first topic
    topic, partition, offset = ref
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataflows",
            "dead-letters",
            "--republish",
            f"{topic}:{partition}:{offset}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert f"re-published {topic}:{partition}:{offset}" in out.stdout
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "t-republish"})
    try:
        original = TopicPartition(topic, partition, offset)
        consumer.assign([original])
        first = consumer.consume(1, 10)[0]
        # The copy went to the partition its key chooses: find it at the end.
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions
        }
        copies = []
        for p, end in ends.items():
            consumer.assign([TopicPartition(topic, p, max(0, end - 50))])
            copies += [m for m in consumer.consume(50, 5) if m.value() == first.value()]
        moved = [
            (m.partition(), m.offset())
            for m in copies
            if (m.partition(), m.offset()) != (partition, offset)
        ]
        assert moved, "no copy at the end of the topic"
    finally:
        consumer.close()
    copy: Ref = (topic, moved[-1][0] or 0, moved[-1][1] or 0)
    # Still poison: the dataflows dead-letter the copy too, and keep running.
    wait_for(
        lambda: any(d == "content" and r == copy for d, r, _ in listed("content")),
        timeout=60,
        what="the copy dead-lettered",
    )
