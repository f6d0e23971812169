"""Opaque, time-ordered identifiers.

A post id carries its community id (`<ulid>-<community id>`), so a post id alone
finds its shard through the ring without asking every shard. A comment id carries
its post id (`<ulid>-<post id>`), so a comment id alone finds its CQL partition.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ulid import ULID

from domain.errors import NotFound

_ULID_LEN = 26


def new_id() -> str:
    return str(ULID())


def new_post_id(community_id: str) -> str:
    return f"{ULID()}-{community_id}"


def community_of_post(post_id: str) -> str:
    """The community id embedded in a post id; NotFound for anything malformed."""
    head, sep, community_id = post_id.partition("-")
    if not sep or len(head) != _ULID_LEN or len(community_id) != _ULID_LEN:
        raise NotFound("post not found", {"post_id": post_id})
    if not (is_valid_id(head) and is_valid_id(community_id)):
        raise NotFound("post not found", {"post_id": post_id})
    return community_id


def new_comment_id(post_id: str) -> str:
    return f"{ULID()}-{post_id}"


def post_of_comment(comment_id: str) -> str:
    """The post id embedded in a comment id; NotFound for anything malformed."""
    head, sep, post_id = comment_id.partition("-")
    if not sep or len(head) != _ULID_LEN or not is_valid_id(head):
        raise NotFound("comment not found", {"comment_id": comment_id})
    try:
        community_of_post(post_id)
    except NotFound:
        raise NotFound("comment not found", {"comment_id": comment_id}) from None
    return post_id


def is_valid_id(value: str) -> bool:
    try:
        ULID.from_str(value)
    except ValueError:
        return False
    return True


def created_at(any_id: str) -> datetime:
    """Creation time encoded in the leading ULID of an id."""
    return ULID.from_str(any_id[:_ULID_LEN]).datetime.astimezone(UTC)
