"""Helpers to run a dataflow in-process over `bytewax.testing` (no servers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSource

from dataflows.common import SourceItem
from domain.ids import new_comment_id, new_id, new_post_id
from schemas.envelope import encode, new_event
from schemas.events import (
    CommentCreated,
    DeadLetter,
    Payload,
    PostCreated,
    ScoreChanged,
    VoteCast,
)


@dataclass
class Log:
    """Records as a topic would hold them, with offsets per topic."""

    messages: list[SourceItem] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)

    def raw(self, topic: str, value: bytes | None) -> int:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        self.messages.append(
            KafkaSourceMessage(key=b"k", value=value, topic=topic, offset=offset, partition=0)
        )
        return offset

    def event(self, topic: str, payload: Payload, key: str = "k") -> int:
        return self.raw(topic, encode(new_event(payload, key=key)))

    def forged(self, topic: str, payload: Payload, **changes: Any) -> int:
        """An event whose payload fields were changed past the producer's validation."""
        envelope = new_event(payload, key="k")
        forged = envelope.model_copy(update={"payload": {**envelope.payload, **changes}})
        return self.raw(topic, forged.model_dump_json().encode())

    def source(self) -> TestingSource[SourceItem]:
        return TestingSource(self.messages)


def letters_at(letters: list[DeadLetter]) -> list[tuple[str, int]]:
    return sorted((d.source_topic, d.offset) for d in letters)


def a_post(community_id: str | None = None, **changes: Any) -> PostCreated:
    community_id = community_id or new_id()
    fields: dict[str, Any] = {
        "post_id": new_post_id(community_id),
        "community_id": community_id,
        "community_name": "demo",
        "author_id": new_id(),
        "author_name": "alice",
        "title": "hello",
        "kind": "text",
        "body": "body",
        "created_at": datetime.now(UTC),
    }
    fields.update(changes)
    return PostCreated(**fields)


def a_comment(post: PostCreated, path: str = "000001", **changes: Any) -> CommentCreated:
    fields: dict[str, Any] = {
        "comment_id": new_comment_id(post.post_id),
        "post_id": post.post_id,
        "community_id": post.community_id,
        "path": path,
        "author_id": new_id(),
        "author_name": "bob",
        "body": "nice",
        "created_at": datetime.now(UTC),
    }
    fields.update(changes)
    return CommentCreated(**fields)


def a_vote(post: PostCreated, user_id: str, direction: int, version: int) -> VoteCast:
    return VoteCast(
        user_id=user_id,
        target_id=post.post_id,
        target_type="post",
        community_id=post.community_id,
        author_id=post.author_id,
        direction=direction,  # type: ignore[arg-type]
        previous=0,
        version=version,
    )


def a_score(post: PostCreated, up: int, down: int, seq: int, author_vote: int = 0) -> ScoreChanged:
    return ScoreChanged(
        target_id=post.post_id,
        target_type="post",
        community_id=post.community_id,
        author_id=post.author_id,
        upvotes=up,
        downvotes=down,
        score=up - down,
        seq=seq,
        version=seq,
        author_vote=author_vote,  # type: ignore[arg-type]
    )
