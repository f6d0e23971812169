"""Event payloads, one model per (type, version), and the topic each type goes to."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas import topics


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class UserRegistered(Payload):
    user_id: str
    username: str
    created_at: datetime


class CommunityCreated(Payload):
    community_id: str
    name: str
    description: str
    visibility: Literal["public", "restricted", "private"]
    creator_id: str
    created_at: datetime


class MembershipChanged(Payload):
    community_id: str
    user_id: str
    joined: bool
    member_count: int


class PostCreated(Payload):
    post_id: str
    community_id: str
    community_name: str
    author_id: str
    author_name: str
    title: str = Field(min_length=1, max_length=300)
    kind: Literal["text", "link", "media"]
    body: str | None = None
    url: str | None = None
    media_id: str | None = None
    created_at: datetime


# Materialised paths: fixed-width slots joined by dots (see domain/comments.py).
COMMENT_PATH = r"^[0-9]{6}(\.[0-9]{6}){0,100}$"


class CommentCreated(Payload):
    """A comment or reply; its path slot was allocated by the API before publishing.

    `parent_author_id` is whom the reply notifies: the parent comment's author, or the
    post's author for a top-level comment (None when the parent was deleted).
    """

    comment_id: str
    post_id: str
    community_id: str
    parent_id: str | None = None
    path: str = Field(pattern=COMMENT_PATH)
    author_id: str
    author_name: str
    body: str = Field(min_length=1, max_length=10000)
    parent_author_id: str | None = None
    created_at: datetime


class CommentEdited(Payload):
    comment_id: str
    post_id: str
    community_id: str
    path: str = Field(pattern=COMMENT_PATH)
    author_id: str
    author_name: str
    body: str = Field(min_length=1, max_length=10000)
    edited_at: datetime


class CommentDeleted(Payload):
    """The comment keeps its place in the tree; its body and author become [deleted]."""

    comment_id: str
    post_id: str
    community_id: str
    path: str = Field(pattern=COMMENT_PATH)
    author_id: str
    deleted_at: datetime


class VoteCast(Payload):
    """One accepted vote transition; `version` is per target, from the API's Redis script."""

    user_id: str
    target_id: str
    target_type: Literal["post", "comment"]
    community_id: str
    author_id: str
    direction: Literal[-1, 0, 1]
    previous: Literal[-1, 0, 1]
    version: int = Field(gt=0)


class ScoreChanged(Payload):
    """A target's authoritative tally; `seq` strictly increases per target."""

    target_id: str
    target_type: Literal["post", "comment"]
    community_id: str
    author_id: str
    upvotes: int
    downvotes: int
    score: int
    seq: int
    version: int
    # The author's own vote on the target, counted in the tally; karma leaves it out.
    author_vote: Literal[-1, 0, 1] = 0


class PostPinned(Payload):
    """A community's pinned posts after a moderator pinned or unpinned one."""

    community_id: str
    post_id: str
    pinned: bool
    pins: list[str]
    actor_id: str


class DeadLetter(Payload):
    source_topic: str
    partition: int
    offset: int
    dataflow: str
    reason: str
    raw: str


# (type, version) -> (payload model, topic). One place names every event shape.
EVENT_TYPES: dict[tuple[str, int], tuple[type[Payload], topics.Topic]] = {
    ("user.registered", 1): (UserRegistered, topics.USERS),
    ("community.created", 1): (CommunityCreated, topics.COMMUNITIES),
    ("membership.changed", 1): (MembershipChanged, topics.COMMUNITIES),
    ("post.created", 1): (PostCreated, topics.POSTS),
    ("post.pinned", 1): (PostPinned, topics.COMMUNITIES),
    ("comment.created", 1): (CommentCreated, topics.COMMENTS),
    ("comment.edited", 1): (CommentEdited, topics.COMMENTS),
    ("comment.deleted", 1): (CommentDeleted, topics.COMMENTS),
    ("vote.cast", 1): (VoteCast, topics.VOTES),
    ("score.changed", 1): (ScoreChanged, topics.SCORES),
    ("dead_letter.recorded", 1): (DeadLetter, topics.DEAD_LETTER),
}
TYPE_OF: dict[type[Payload], tuple[str, int]] = {
    model: type_version for type_version, (model, _) in EVENT_TYPES.items()
}
