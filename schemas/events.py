"""Event payloads, one model per (type, version), and the topic each type goes to."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from schemas import topics

# C0 control characters and DEL, except tab, newline and carriage return: no text on
# the log carries them (Postgres refuses NUL outright; the rest are never content).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
INT32 = 2**31 - 1
INT64 = 2**63 - 1

Id = Annotated[str, Field(min_length=1, max_length=200)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
Count = Annotated[int, Field(ge=0, le=INT32)]


def escape_controls(text: str) -> str:
    return CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def control_in(fields: Mapping[str, object]) -> str | None:
    """The first control character in the text fields (or lists of text), described."""
    for name, value in fields.items():
        for text in value if isinstance(value, list) else (value,):
            if isinstance(text, str) and (found := CONTROL.search(text)) is not None:
                return f"{name}: contains control character U+{ord(found.group()):04X}"
    return None


# Validation context of a payload whose whole record was screened for control
# characters as bytes (`schemas.envelope.decode`): its fields need no second look.
SCREENED = {"controls": "screened"}


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    @model_validator(mode="after")
    def no_control_characters(self, info: ValidationInfo) -> Self:
        # One look per payload rather than a validator call per field: the per-field
        # form was a quarter of a dataflow's decode.
        if info.context is not SCREENED:
            problem = control_in(self.__dict__)
            if problem is not None:
                raise ValueError(problem)
        return self


class UserRegistered(Payload):
    user_id: Id
    username: Name
    created_at: datetime


class CommunityCreated(Payload):
    community_id: Id
    name: Name
    description: str = Field(max_length=500)
    visibility: Literal["public", "restricted", "private"]
    creator_id: Id
    created_at: datetime


class MembershipChanged(Payload):
    community_id: Id
    user_id: Id
    joined: bool
    member_count: Count


class PostCreated(Payload):
    post_id: Id
    community_id: Id
    community_name: Name
    author_id: Id
    author_name: Name
    title: str = Field(min_length=1, max_length=300)
    kind: Literal["text", "link", "media"]
    body: str | None = Field(default=None, max_length=40000)
    url: str | None = Field(default=None, max_length=2000)
    media_id: Id | None = None
    created_at: datetime
    # A media post's stored image and thumbnail (object keys; no thumbnail when its
    # upload's thumbnail failed).
    media_key: str | None = Field(default=None, max_length=300)
    thumbnail_key: str | None = Field(default=None, max_length=300)


class PostEdited(Payload):
    """The author changed a post; fields left None are unchanged."""

    post_id: Id
    community_id: Id
    author_id: Id
    title: str | None = Field(default=None, min_length=1, max_length=300)
    body: str | None = Field(default=None, max_length=40000)
    url: str | None = Field(default=None, max_length=2000)
    edited_at: datetime


class PostDeleted(Payload):
    """The author deleted a post: it leaves every listing and shows [deleted]; its
    comment tree stays."""

    post_id: Id
    community_id: Id
    author_id: Id
    deleted_at: datetime


class CommunityUpdated(Payload):
    """A community's settings after a moderator changed them (the whole new state)."""

    community_id: Id
    name: Name
    description: str = Field(max_length=500)
    rules: str = Field(default="", max_length=10000)
    visibility: Literal["public", "restricted", "private"]
    actor_id: Id
    updated_at: datetime


class ContentModerated(Payload):
    """A moderator removed or approved a post or comment."""

    community_id: Id
    target_id: Id
    target_type: Literal["post", "comment"]
    post_id: Id
    author_id: Id
    action: Literal["remove", "approve"]
    actor_id: Id
    reason: str = Field(default="", max_length=1000)
    at: datetime
    actor_name: str = Field(default="", max_length=64)


class MemberSanctioned(Payload):
    """A ban, mute or shadow-ban in one community, or its end; `until` None is
    permanent (for the lifting kinds it is ignored)."""

    community_id: Id
    user_id: Id
    kind: Literal["ban", "unban", "mute", "unmute", "shadow_ban", "unshadow_ban"]
    until: datetime | None = None
    actor_id: Id  # "system" for an automatic sanction (e.g. the spam dataflow's)
    reason: str = Field(default="", max_length=1000)
    at: datetime
    actor_name: str = Field(default="", max_length=64)


class PostLocked(Payload):
    community_id: Id
    post_id: Id
    locked: bool
    actor_id: Id
    at: datetime


class PostFlaired(Payload):
    community_id: Id
    post_id: Id
    flair: str | None = Field(default=None, max_length=64)
    actor_id: Id
    at: datetime


class ReportFiled(Payload):
    report_id: Id
    community_id: Id
    target_id: Id
    target_type: Literal["post", "comment"]
    reporter_id: Id
    reason: str = Field(min_length=1, max_length=1000)
    at: datetime


class UserDeleted(Payload):
    """An account was deleted: every dataflow shows its author as [deleted] from now
    on and after any replay (see the account lifecycle in the README)."""

    user_id: Id
    deleted_at: datetime


# Materialised paths: fixed-width slots joined by dots (see domain/comments.py).
COMMENT_PATH = r"^[0-9]{6}(\.[0-9]{6}){0,100}$"


class CommentCreated(Payload):
    """A comment or reply; its path slot was allocated by the API before publishing.

    `parent_author_id` is whom the reply notifies: the parent comment's author, or the
    post's author for a top-level comment (None when the parent was deleted).
    """

    comment_id: Id
    post_id: Id
    community_id: Id
    parent_id: Id | None = None
    path: str = Field(pattern=COMMENT_PATH)
    author_id: Id
    author_name: Name
    body: str = Field(min_length=1, max_length=10000)
    parent_author_id: Id | None = None
    created_at: datetime


class CommentEdited(Payload):
    comment_id: Id
    post_id: Id
    community_id: Id
    path: str = Field(pattern=COMMENT_PATH)
    author_id: Id
    author_name: Name
    body: str = Field(min_length=1, max_length=10000)
    edited_at: datetime


class CommentDeleted(Payload):
    """The comment keeps its place in the tree; its body and author become [deleted]."""

    comment_id: Id
    post_id: Id
    community_id: Id
    path: str = Field(pattern=COMMENT_PATH)
    author_id: Id
    deleted_at: datetime


class VoteCast(Payload):
    """One accepted vote transition; `version` is per target, from the API's Redis script."""

    user_id: Id
    target_id: Id
    target_type: Literal["post", "comment"]
    community_id: Id
    author_id: Id
    direction: Literal[-1, 0, 1]
    previous: Literal[-1, 0, 1]
    version: int = Field(gt=0, le=INT64)


class VoteExcluded(Payload):
    """The spam dataflow found `user_id` in a vote ring: their vote on this target stops
    counting (now and whatever they vote here later). On the votes topic, keyed by
    target like the votes themselves, so the votes dataflow applies it in log order and
    a replay gives the same tallies."""

    user_id: Id
    target_id: Id
    target_type: Literal["post", "comment"]
    community_id: Id
    author_id: Id
    ring_id: Id
    at: datetime


class ScoreChanged(Payload):
    """A target's authoritative tally; `seq` strictly increases per target."""

    target_id: Id
    target_type: Literal["post", "comment"]
    community_id: Id
    author_id: Id
    upvotes: Count
    downvotes: Count
    score: int = Field(ge=-INT32, le=INT32)
    seq: int = Field(ge=0, le=INT64)
    version: int = Field(ge=0, le=INT64)
    # The author's own vote on the target, counted in the tally; karma leaves it out.
    author_vote: Literal[-1, 0, 1] = 0

    @model_validator(mode="after")
    def score_is_the_difference(self) -> ScoreChanged:
        if self.score != self.upvotes - self.downvotes:
            raise ValueError("score must equal upvotes - downvotes")
        return self


class PostPinned(Payload):
    """A community's pinned posts after a moderator pinned or unpinned one."""

    community_id: Id
    post_id: Id
    pinned: bool
    pins: list[Id] = Field(max_length=10)
    actor_id: Id


class MediaUploaded(Payload):
    """An image was accepted (type judged from its bytes, metadata stripped) and stored
    at `key`; the media dataflow makes its thumbnail."""

    media_id: Id
    owner_id: Id
    key: str = Field(min_length=1, max_length=300)
    content_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    size: int = Field(ge=1, le=INT64)
    width: int = Field(ge=1, le=INT32)
    height: int = Field(ge=1, le=INT32)
    uploaded_at: datetime


class DeadLetter(Payload):
    """A record a dataflow could not use; `reason` and `raw` have control characters
    escaped (`escape_controls`), so a dead letter itself always encodes."""

    source_topic: str
    partition: int
    offset: int
    dataflow: str
    reason: str
    raw: str


# (type, version) -> (payload model, topic). One place names every event shape.
EVENT_TYPES: dict[tuple[str, int], tuple[type[Payload], topics.Topic]] = {
    ("user.registered", 1): (UserRegistered, topics.USERS),
    ("user.deleted", 1): (UserDeleted, topics.USERS),
    ("community.updated", 1): (CommunityUpdated, topics.COMMUNITIES),
    ("post.edited", 1): (PostEdited, topics.POSTS),
    ("post.deleted", 1): (PostDeleted, topics.POSTS),
    ("content.moderated", 1): (ContentModerated, topics.MODERATION),
    ("member.sanctioned", 1): (MemberSanctioned, topics.MODERATION),
    ("post.locked", 1): (PostLocked, topics.MODERATION),
    ("post.flaired", 1): (PostFlaired, topics.MODERATION),
    ("report.filed", 1): (ReportFiled, topics.MODERATION),
    ("community.created", 1): (CommunityCreated, topics.COMMUNITIES),
    ("membership.changed", 1): (MembershipChanged, topics.COMMUNITIES),
    ("post.created", 1): (PostCreated, topics.POSTS),
    ("post.pinned", 1): (PostPinned, topics.COMMUNITIES),
    ("comment.created", 1): (CommentCreated, topics.COMMENTS),
    ("comment.edited", 1): (CommentEdited, topics.COMMENTS),
    ("comment.deleted", 1): (CommentDeleted, topics.COMMENTS),
    ("vote.cast", 1): (VoteCast, topics.VOTES),
    ("vote.excluded", 1): (VoteExcluded, topics.VOTES),
    ("score.changed", 1): (ScoreChanged, topics.SCORES),
    ("media.uploaded", 1): (MediaUploaded, topics.MEDIA),
    ("dead_letter.recorded", 1): (DeadLetter, topics.DEAD_LETTER),
}
TYPE_OF: dict[type[Payload], tuple[str, int]] = {
    model: type_version for type_version, (model, _) in EVENT_TYPES.items()
}
