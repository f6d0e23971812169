"""Search rules without a framework: who may find what, paging cursors, highlights.

Visibility is a filter built from the caller's memberships (not Meilisearch tenant
tokens: a token would carry the same filter, signed per user, and cost a signature
per request for nothing the API cannot already enforce, since only the API talks to
Meilisearch). A post is found when it is live (not removed; deleted posts are not in
the index), its community is public or restricted or one the caller belongs to or
moderates, and it is not shadow-banned unless the caller wrote it or moderates its
community.

Cursors are opaque (base64url JSON). `new` and `top` page by keyset (the last item's
sort values, plus the ids already shown at exactly those values), so items that
arrive meanwhile never repeat a shown one; `relevance` pages by offset, up to the
index's `maxTotalHits`.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import orjson

from domain.errors import ValidationFailed

Sort = Literal["relevance", "new", "top"]
SORTS: tuple[Sort, ...] = ("relevance", "new", "top")
MAX_QUERY_CHARS = 256
MAX_OFFSET = 1000
MARK_OPEN = "\ue000"  # private-use characters: no escaping can produce them
MARK_CLOSE = "\ue001"
CROP_WORDS = 24
LISTED = ("public", "restricted")


@dataclass(frozen=True)
class Scope:
    """What a caller may read beyond public and restricted communities."""

    user_id: str | None = None
    private_member: tuple[str, ...] = ()  # private communities the caller is in
    moderated: tuple[str, ...] = ()  # communities the caller moderates


ANONYMOUS = Scope()


@dataclass(frozen=True)
class Cursor:
    offset: int = 0
    score: int | None = None
    created: int | None = None  # ms since the epoch
    seen: tuple[str, ...] = ()  # ids shown at exactly (score, created)


def quote(value: str) -> str:
    """A string literal in a Meilisearch filter."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def in_filter(attribute: str, values: Iterable[str]) -> str | None:
    """`attribute IN [...]`, or None for no values."""
    quoted = [quote(v) for v in values]
    return f"{attribute} IN [{', '.join(quoted)}]" if quoted else None


def _any(*terms: str | None) -> str:
    present = [t for t in terms if t]
    return present[0] if len(present) == 1 else "(" + " OR ".join(present) + ")"


def visibility_filter(scope: Scope) -> list[str]:
    """Filters (ANDed) that hide what the caller may not see."""
    readable = set(scope.private_member) | set(scope.moderated)
    terms = [
        'state = "live"',
        _any(in_filter("visibility", LISTED), in_filter("community_id", sorted(readable))),
    ]
    if scope.user_id is None:
        terms.append("shadowed = false")
    else:
        terms.append(
            _any(
                "shadowed = false",
                f"author_id = {quote(scope.user_id)}",
                in_filter("community_id", sorted(scope.moderated)),
            )
        )
    return terms


def community_filter(scope: Scope) -> str:
    mine = in_filter("community_id", sorted(scope.private_member))
    return _any(in_filter("visibility", LISTED), mine)


def parse_sort(value: str | None) -> Sort:
    value = value or "relevance"
    if value not in SORTS:
        raise ValidationFailed(f"sort must be one of {', '.join(SORTS)}", {"sort": value})
    return cast(Sort, value)


def parse_query(value: str | None) -> str:
    q = (value or "").strip()
    if len(q) > MAX_QUERY_CHARS:
        raise ValidationFailed(
            f"q must be at most {MAX_QUERY_CHARS} characters", {"q": f"{len(q)} characters"}
        )
    return q


def encode_cursor(cursor: Cursor) -> str:
    body = {"o": cursor.offset, "s": cursor.score, "t": cursor.created, "ids": list(cursor.seen)}
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decode_cursor(value: str | None, sort: Sort) -> Cursor | None:
    if not value:
        return None
    bad = ValidationFailed("cursor is not valid", {"cursor": value[:80]})
    try:
        body = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise bad from None
    if not isinstance(body, dict):
        raise bad
    offset, score, created, ids = body.get("o"), body.get("s"), body.get("t"), body.get("ids")
    ints = (offset, score, created)
    if any(v is not None and (not isinstance(v, int) or isinstance(v, bool)) for v in ints):
        raise bad
    if not isinstance(ids, list) or len(ids) > 100 or not all(isinstance(i, str) for i in ids):
        raise bad
    if not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise bad
    if sort != "relevance" and created is None:
        raise bad
    if sort == "top" and score is None:
        raise bad
    return Cursor(offset, score, created, tuple(i[:200] for i in ids))


def keyset_filter(sort: Sort, cursor: Cursor | None) -> str | None:
    """Only items after the cursor's position, for the keyset sorts."""
    if cursor is None or sort == "relevance":
        return None
    t = cursor.created
    not_seen = in_filter("post_id", cursor.seen)
    same_t = f"created_at = {t}" + (f" AND NOT {not_seen}" if not_seen else "")
    if sort == "new":
        return f"(created_at < {t} OR ({same_t}))"
    s = cursor.score
    return f"(score < {s} OR (score = {s} AND created_at < {t}) OR (score = {s} AND {same_t}))"


def sort_rules(sort: Sort) -> list[str] | None:
    if sort == "new":
        return ["created_at:desc", "post_id:desc"]
    if sort == "top":
        return ["score:desc", "created_at:desc", "post_id:desc"]
    return None


def next_cursor(
    sort: Sort, cursor: Cursor | None, page: Sequence[dict[str, object]], more: bool
) -> str | None:
    if not more or not page:
        return None
    if sort == "relevance":
        offset = (cursor.offset if cursor else 0) + len(page)
        return encode_cursor(Cursor(offset=offset)) if offset < MAX_OFFSET else None
    last = page[-1]
    score = cast(int, last["score"]) if sort == "top" else None
    created = cast(int, last["created_at"])
    seen = [
        cast(str, item["post_id"])
        for item in page
        if item["created_at"] == created and (sort == "new" or item["score"] == score)
    ]
    if cursor is not None and cursor.created == created and cursor.score == score:
        seen = [*cursor.seen, *seen]  # a run of equal values longer than a page
    return encode_cursor(Cursor(score=score, created=created, seen=tuple(seen)))


def escape_highlight(text: str) -> str:
    """HTML-escape a highlighted text, then turn the markers into <mark> tags: nothing
    a post contains is ever returned as markup."""
    escaped = html.escape(text.replace(MARK_OPEN, "\0").replace(MARK_CLOSE, "\1"), quote=True)
    return escaped.replace("\0", "<mark>").replace("\1", "</mark>")
