"""Kafka goes away during a stream of votes: every write answers within about 2 s, the
only 5xx is a 503 with Retry-After, reads keep answering and /readyz names kafka. Once
the broker is back, the same API process takes writes again, and the tallies equal a
recomputation from the votes topic, with every acknowledged vote on it.

This stops the stack's Kafka (`deploy/stack.sh stop kafka`) and always starts it again."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from domain.ids import new_id
from domain.votes import Tally
from schemas.envelope import InvalidEvent, decode
from schemas.topics import COMMUNITIES
from stores.kafka import ACK_WAIT_SECONDS
from stores.kafka_admin import end_offsets
from tests.e2e.log_tallies import votes_in_log
from tests.e2e.stack_control import service_up, stack_service, start_service, stop_service
from tests.processes import wait_for

pytestmark = pytest.mark.slow

# Seconds within which every write answers, outage or not: the publisher's wait for
# an acknowledgement and the follow-up of an unknown outcome, on two cores that the
# broker's JVM, eight reconnecting dataflows and this test's clients share (up to
# 1.06 s over the wait seen in CI runs). A write that hangs would take 10 s or more.
WRITE_BUDGET = ACK_WAIT_SECONDS + 2.0
VOTER_THREADS = 4
USERS_PER_THREAD = 3
POSTS = 3
OUTAGE_SECONDS = 5.0  # the broker stays down at least this long (several circuit probes)


@pytest.fixture(scope="module")
def stack_kafka(stack) -> Iterator[None]:
    """Kafka as run by deploy/stack.sh (the test stops and starts it); up again at the end."""
    with stack_service("kafka"):
        yield


@dataclass
class Answer:
    kind: str  # vote, read
    started: float
    seconds: float
    status: int
    retry_after: str | None = None
    code: str | None = None
    user: str = ""
    target: str = ""
    direction: int = 0


class Traffic:
    """Voter threads (each user is driven by one thread, so a user's votes are
    sequential) and one reader thread, until stopped; every answer is recorded."""

    def __init__(self, base: str, users: list, posts: list[str], community: str) -> None:
        self.base = f"{base}/api/v1"
        self.users = users
        self.posts = posts
        self.community = community
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def record(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def since(self, t: float, kind: str, status: int | None = None) -> list[Answer]:
        with self.lock:
            return [
                a
                for a in self.answers
                if a.kind == kind and a.started >= t and (status is None or a.status == status)
            ]

    def voter(self, seed: int, users: list) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while not self.stop.is_set():
                user, post, direction = (
                    rng.choice(users),
                    rng.choice(self.posts),
                    rng.choice((1, 0, -1)),
                )
                started = time.monotonic()
                r = http.put(
                    "/votes",
                    json={"target_id": post, "target_type": "post", "direction": direction},
                    headers=user.headers,
                )
                code = None
                if r.status_code >= 400:
                    code = r.json().get("error", {}).get("code")
                self.record(
                    Answer(
                        "vote",
                        started,
                        time.monotonic() - started,
                        r.status_code,
                        r.headers.get("retry-after"),
                        code,
                        user.user_id,
                        post,
                        direction,
                    )
                )
                self.stop.wait(0.01)

    def reader(self) -> None:
        paths = [f"/posts/{p}" for p in self.posts] + [
            f"/communities/{self.community}",
            f"/communities/{self.community}/posts?sort=new",
        ]
        with httpx.Client(base_url=self.base, timeout=30) as http:
            i = 0
            while not self.stop.is_set():
                started = time.monotonic()
                r = http.get(paths[i % len(paths)])
                self.record(Answer("read", started, time.monotonic() - started, r.status_code))
                i += 1
                self.stop.wait(0.02)

    def start(self) -> None:
        for n in range(VOTER_THREADS):
            users = self.users[n * USERS_PER_THREAD : (n + 1) * USERS_PER_THREAD]
            self.threads.append(threading.Thread(target=self.voter, args=(n, users)))
        self.threads.append(threading.Thread(target=self.reader))
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        assert not any(t.is_alive() for t in self.threads)


def readyz(base: str) -> httpx.Response | None:
    try:
        return httpx.get(f"{base}/readyz", timeout=10)
    except httpx.HTTPError:
        return None


def keyed_events(bootstrap: str, topic: str, key: str, start: dict[int, int]) -> int:
    """How many valid events with `key` the topic holds after the `start` offsets."""
    ends = end_offsets(bootstrap, topic)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "outage-test"})
    consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in ends])
    remaining = {p for p, end in ends.items() if end > start.get(p, 0)}
    found = 0
    try:
        while remaining:
            for msg in consumer.consume(500, timeout=5):
                if msg.error():
                    continue
                partition, offset = msg.partition() or 0, msg.offset() or 0
                if offset >= ends[partition] - 1:
                    remaining.discard(partition)
                try:
                    envelope, _payload = decode(msg.value())
                except InvalidEvent:
                    continue
                found += envelope.key == key
    finally:
        consumer.close()
    return found


def collapse(directions: list[int]) -> list[int]:
    return [d for i, d in enumerate(directions) if i == 0 or directions[i - 1] != d]


def is_subsequence(part: list[int], whole: list[int]) -> bool:
    rest = iter(whole)
    return all(any(d == w for w in rest) for d in part)


def test_kafka_outage_during_a_vote_stream(client, platform, settings, stack_kafka):
    author = client.register("outage")
    community = client.community(author)
    posts = [client.post(author, community, f"outage {i}") for i in range(POSTS)]
    users = [client.register("ov") for _ in range(VOTER_THREADS * USERS_PER_THREAD)]
    for post in posts:  # votable: the target's live state is in Redis

        def votable(post: str = post) -> bool:
            return client.vote(author, post, 0).status_code == 200

        wait_for(votable, timeout=30, what=f"post {post} to take votes")
    api_pid = httpx.get(f"{platform.base}/healthz").json()["pid"]

    retried = {"title": "retried across the outage", "kind": "text"}
    key = {**author.headers, "Idempotency-Key": f"outage-{author.user_id}"}

    def create_post() -> httpx.Response:
        return client.http.post(f"/communities/{community}/posts", json=retried, headers=key)

    before = end_offsets(settings.kafka_bootstrap, COMMUNITIES.name)
    traffic = Traffic(platform.base, users, posts, community)
    t0 = time.monotonic()
    traffic.start()
    try:
        wait_for(
            lambda: len(traffic.since(t0, "vote", 200)) >= 30, timeout=60, what="votes flowing"
        )

        # ---- the broker goes away
        t_down = time.monotonic()
        stop_service("kafka")
        t_stopped = time.monotonic()

        def not_ready() -> httpx.Response | None:
            r = readyz(platform.base)
            return r if r is not None and r.status_code == 503 else None

        r = wait_for(not_ready, timeout=30, what="/readyz to report the outage")
        error = r.json()["error"]
        assert error["code"] == "not_ready"
        assert set(error["details"]) == {"kafka"}, error
        assert "kafka" in error["message"]

        wait_for(
            lambda: len(traffic.since(t_stopped, "vote", 503)) >= 20,
            timeout=60,
            what="votes answered 503 while the broker is down",
        )
        wait_for(
            lambda: (
                len(traffic.since(t_stopped, "read")) >= 20
                and time.monotonic() - t_stopped >= OUTAGE_SECONDS
            ),
            timeout=60,
            what=f"reads during at least {OUTAGE_SECONDS}s of outage",
        )
        # a creation answers 503 quickly too: its outcome is unknown, a retry is safe
        started = time.monotonic()
        r = create_post()
        assert time.monotonic() - started < WRITE_BUDGET
        assert r.status_code == 503, r.text
        assert r.headers.get("retry-after")
        assert r.json()["error"]["code"] == "unavailable"
        # a community is one Postgres transaction with an outbox row: no broker needed
        started = time.monotonic()
        r = client.http.post(
            "/communities", json={"name": f"o{new_id()[-12:].lower()}"}, headers=author.headers
        )
        assert r.status_code == 201 and time.monotonic() - started < WRITE_BUDGET, r.text
        community_id = r.json()["community_id"]
        # (a vote that repeats the user's current direction still answers 200: it
        # changes nothing and needs no event)

        # ---- the broker returns
        t_starting = time.monotonic()
        start_service("kafka")

        def ready() -> bool:
            r = readyz(platform.base)
            return r is not None and r.status_code == 200

        wait_for(
            ready,
            timeout=60,
            what="/readyz to be 200 again",
        )
        t_ready = time.monotonic()
        wait_for(
            lambda: len(traffic.since(t_ready, "vote", 200)) >= 30,
            timeout=60,
            what="votes accepted again after the broker returned",
        )

        # the creation retried with its key succeeds (409 while its first attempt's
        # fate is still open)
        def retry() -> httpx.Response | None:
            r = create_post()
            assert r.status_code in (202, 409, 503), r.text
            return r if r.status_code == 202 else None

        created = wait_for(
            retry,
            timeout=30,
            interval=0.5,
            what="the retried creation to succeed",
        )
    finally:
        traffic.finish()
        if not service_up("kafka"):
            start_service("kafka")

    # ---- what every client saw
    votes = [a for a in traffic.answers if a.kind == "vote"]
    reads = [a for a in traffic.answers if a.kind == "read"]
    slow = [a for a in votes if a.seconds > WRITE_BUDGET]
    assert not slow, f"{len(slow)} writes took longer than {WRITE_BUDGET}s: {slow[:3]}"
    assert {a.status for a in votes} == {200, 503}, {a.status for a in votes}
    for a in votes:
        if a.status == 503:
            assert a.retry_after and int(a.retry_after) >= 1, a
            assert a.code == "unavailable", a
    assert {a.status for a in reads} == {200}, [a for a in reads if a.status != 200][:3]
    outage_503 = [a for a in votes if a.status == 503 and t_down <= a.started < t_ready]
    assert outage_503 and all(a.started >= t_down for a in votes if a.status == 503)
    print(
        f"\nbroker outage: stop {t_stopped - t_down:.1f}s, down {t_starting - t_stopped:.1f}s, "
        f"start+ready {t_ready - t_starting:.1f}s; {len(votes)} votes "
        f"({len(outage_503)} answered 503, slowest "
        f"{max(a.seconds for a in votes):.2f}s), {len(reads)} reads all 200"
    )

    # the same API process took the writes again
    assert platform.api.alive()
    assert httpx.get(f"{platform.base}/healthz").json()["pid"] == api_pid

    # ---- the log: every acknowledged vote is on it, and the dataflow's tallies match it
    tallies = {p: Tally() for p in posts}
    logged: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for vote in votes_in_log(settings.kafka_bootstrap):
        if vote.target_id in tallies:
            tallies[vote.target_id].apply(vote.user_id, vote.direction, vote.version)
            logged[(vote.user_id, vote.target_id)].append((vote.version, vote.direction))
    expected = {p: (t.upvotes, t.downvotes) for p, t in tallies.items()}
    acknowledged: dict[tuple[str, str], list[int]] = defaultdict(list)
    for a in sorted(votes, key=lambda a: a.started):
        if a.status == 200:
            acknowledged[(a.user, a.target)].append(a.direction)
    for pair, directions in acknowledged.items():
        on_log = [0] + [d for _v, d in sorted(logged[pair])]
        assert is_subsequence(collapse(directions), collapse(on_log)), (pair, directions, on_log)

    # the outbox relay kept running and published the community created meanwhile
    wait_for(
        lambda: keyed_events(settings.kafka_bootstrap, COMMUNITIES.name, community_id, before),
        timeout=60,
        interval=0.5,
        what="the relay to publish the community created during the outage",
    )

    # exactly one post came of the creation and its retries
    marker = client.post(author, community, "after the outage")

    def titles() -> list[str] | None:
        path = f"/communities/{community}/posts?sort=new&limit=100"
        items = client.listing(path)["items"]
        found = [p["title"] for p in items]
        return found if marker in {p["post_id"] for p in items} else None

    listed = wait_for(titles, timeout=30, what="the post after the outage to be listed")
    assert listed.count(retried["title"]) == 1, listed
    assert client.get_post(created.json()["post_id"])["title"] == retried["title"]

    dead = [name for name, proc in platform.flows.items() if not proc.alive()]
    assert not dead, {name: platform.flows[name].log_tail() for name in dead}

    def stored() -> dict[str, tuple[int, int]]:
        return {p: (client.get_post(p)["upvotes"], client.get_post(p)["downvotes"]) for p in posts}

    wait_for(
        lambda: stored() == expected,
        timeout=120,
        interval=0.5,
        what=f"tallies to equal the recomputation from the log {expected}",
    )
