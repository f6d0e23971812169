"""Recompute karma from the votes topic itself: the reference the karma dataflow must match.

Per target, the tally of every vote event (latest version per voter wins); a target's
contribution is its score minus its author's own vote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from domain.votes import Tally
from schemas.envelope import InvalidEvent, decode
from schemas.events import VoteCast
from schemas.topics import VOTES
from stores.kafka_admin import end_offsets


@dataclass
class Target:
    author_id: str
    kind: str
    tally: Tally = field(default_factory=Tally)


def recompute_karma(bootstrap: str, authors: set[str]) -> dict[str, tuple[int, int]]:
    """(post karma, comment karma) of each of `authors`."""
    ends = end_offsets(bootstrap, VOTES.name)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "agora-karma", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(VOTES.name, p, 0) for p in ends])
    remaining = {p for p, end in ends.items() if end > 0}
    targets: dict[str, Target] = {}
    try:
        while remaining:
            for msg in consumer.consume(500, timeout=5):
                if msg.error():
                    continue
                partition, offset = msg.partition() or 0, msg.offset() or 0
                if offset >= ends[partition] - 1:
                    remaining.discard(partition)
                try:
                    _env, vote = decode(msg.value())
                except InvalidEvent:
                    continue
                if isinstance(vote, VoteCast) and vote.author_id in authors:
                    target = targets.setdefault(
                        vote.target_id, Target(vote.author_id, vote.target_type)
                    )
                    target.tally.apply(vote.user_id, vote.direction, vote.version)
    finally:
        consumer.close()
    karma = {a: [0, 0] for a in authors}
    for t in targets.values():
        value = t.tally.score - t.tally.direction_of(t.author_id)
        karma[t.author_id][0 if t.kind == "post" else 1] += value
    return {a: (post, comment) for a, (post, comment) in karma.items()}
