"""Recompute tallies from the votes topic itself: the reference the dataflow must match."""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka import Consumer, TopicPartition

from domain.votes import Tally
from schemas.envelope import InvalidEvent, decode
from schemas.events import VoteCast, VoteExcluded
from schemas.topics import VOTES
from stores.kafka_admin import end_offsets


def votes_in_log(bootstrap: str) -> Iterator[VoteCast]:
    """Every valid vote event on the topic now, from offset 0 to the current end."""
    for event in vote_events_in_log(bootstrap):
        if isinstance(event, VoteCast):
            yield event


def vote_events_in_log(bootstrap: str) -> Iterator[VoteCast | VoteExcluded]:
    """Every valid vote event and exclusion of a ring member's vote (the spam dataflow's)
    on the topic now, from offset 0 to the current end, in log order per target."""
    ends = end_offsets(bootstrap, VOTES.name)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "agora-recompute", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(VOTES.name, p, 0) for p in ends])
    remaining = {p for p, end in ends.items() if end > 0}
    try:
        while remaining:
            for msg in consumer.consume(500, timeout=5):
                if msg.error():
                    continue
                partition, offset = msg.partition() or 0, msg.offset() or 0
                if offset >= ends[partition] - 1:
                    remaining.discard(partition)
                try:
                    _env, payload = decode(msg.value())
                except InvalidEvent:
                    continue
                if isinstance(payload, VoteCast | VoteExcluded):
                    yield payload
    finally:
        consumer.close()


def recompute(bootstrap: str, targets: set[str]) -> dict[str, tuple[int, int]]:
    tallies = {t: Tally() for t in targets}
    for vote in vote_events_in_log(bootstrap):
        if vote.target_id not in tallies:
            continue
        if isinstance(vote, VoteExcluded):
            tallies[vote.target_id].exclude(vote.user_id)
        else:
            tallies[vote.target_id].apply(vote.user_id, vote.direction, vote.version)
    return {t: (v.upvotes, v.downvotes) for t, v in tallies.items()}
