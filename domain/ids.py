"""Opaque, time-ordered identifiers.

A post id carries its community id (`<ulid>-<community id>`), so a post id alone
finds its shard through the ring without asking every shard. A comment id carries
its post id (`<ulid>-<post id>`), so a comment id alone finds its CQL partition.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ulid import ULID

from domain.errors import NotFound

_ULID_LEN = 26
# What python-ulid's ULID.from_str accepts: 26 Crockford base-32 letters in either
# case, the first at most 7 (128 bits); checked with one regex, since ids are checked
# on every request and every event and the parse is ten times dearer.
_ULID_TEXT = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.IGNORECASE)
_CANONICAL = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")  # as new_id() writes them
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_BASE32 = str.maketrans(_CROCKFORD, "0123456789abcdefghijklmnopqrstuv")


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
    return isinstance(value, str) and _ULID_TEXT.fullmatch(value) is not None


def ulid_number(value: str) -> int | None:
    """The 128-bit number of an id as new_id() writes it (upper case), else None."""
    if len(value) != _ULID_LEN or _CANONICAL.fullmatch(value) is None:
        return None
    return int(value.translate(_TO_BASE32), 32)


def ulid_string(number: int) -> str:
    """The inverse of ulid_number."""
    digits = []
    for _ in range(_ULID_LEN):
        number, digit = divmod(number, 32)
        digits.append(_CROCKFORD[digit])
    return "".join(reversed(digits))


def created_at(any_id: str) -> datetime:
    """Creation time encoded in the leading ULID of an id (ValueError if it has none)."""
    head = any_id[:_ULID_LEN]
    if not is_valid_id(head):
        raise ValueError(f"not a ULID: {head!r}")
    milliseconds = int(head[:10].upper().translate(_TO_BASE32), 32)
    return datetime.fromtimestamp(milliseconds / 1000, UTC)
