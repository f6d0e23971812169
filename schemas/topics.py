"""The topic catalog: every Kafka topic, its partition count and what keys it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str
    description: str


USERS = Topic("users", 4, "user_id", "accounts registered, deleted (from the outbox)")
COMMUNITIES = Topic(
    "communities", 4, "community_id", "communities created and memberships (from the outbox)"
)
POSTS = Topic("posts", 4, "community_id", "posts created, edited, deleted")
COMMENTS = Topic("comments", 4, "post_id", "comments created, edited, deleted")
VOTES = Topic("votes", 6, "target_id", "vote changes, one event per accepted transition")
SCORES = Topic("scores", 6, "target_id", "authoritative tallies from the votes dataflow")
MODERATION = Topic(
    "moderation",
    4,
    "community_id",
    "moderators' actions and reports: removals, approvals, bans, mutes, shadow-bans, locks,"
    " flairs (from the outbox)",
)
MEDIA = Topic("media", 4, "media_id", "uploads accepted, for the media dataflow (from the outbox)")
DEAD_LETTER = Topic("dead-letter", 1, "source topic", "records a dataflow could not use")

CATALOG: tuple[Topic, ...] = (
    USERS,
    COMMUNITIES,
    POSTS,
    COMMENTS,
    VOTES,
    SCORES,
    MODERATION,
    MEDIA,
    DEAD_LETTER,
)
BY_NAME: dict[str, Topic] = {t.name: t for t in CATALOG}
