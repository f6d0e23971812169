"""Search: `GET /search` and community autocomplete over the Meilisearch indexes.

A request costs one Meilisearch call plus, for a signed-in caller, one indexed
Postgres read of their memberships (the private communities they are in, the ones
they moderate). It is read on every request, not cached: a join, an approval or a
new community shows in the caller's next search, on every API process.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.security import Principal
from domain import search as rules
from domain.errors import Unavailable
from domain.search import ANONYMOUS, Scope, Sort
from stores.communities import CommunityRow, CommunityStore
from stores.search import COMMUNITIES, POSTS, SearchIndex

RETRIEVED = ["post_id", "title", "community", "author", "score", "created_at"]


def _iso(ms: object) -> str | None:
    if not isinstance(ms, int | float):
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


class SearchService:
    def __init__(self, index: SearchIndex, communities: CommunityStore) -> None:
        self.index = index
        self.communities = communities

    async def scope(self, principal: Principal | None) -> Scope:
        if principal is None:
            return ANONYMOUS
        private, moderated = await self.communities.reader_scope(principal.user_id)
        return Scope(principal.user_id, tuple(private), tuple(moderated))

    async def posts(
        self,
        principal: Principal | None,
        q: str,
        community: str | None,
        author: str | None,
        sort: Sort,
        limit: int,
        cursor_text: str | None,
    ) -> dict[str, Any]:
        cursor = rules.decode_cursor(cursor_text, sort)
        scope = await self.scope(principal)
        filters = rules.visibility_filter(scope)
        if community:
            filters.append(f"community = {rules.quote(community)}")
        if author:
            filters.append(f"author = {rules.quote(author)}")
        after = rules.keyset_filter(sort, cursor)
        if after:
            filters.append(after)
        body: dict[str, object] = {
            "q": q,
            "filter": " AND ".join(filters),
            "limit": limit + 1,
            "offset": cursor.offset if cursor and sort == "relevance" else 0,
            "attributesToRetrieve": RETRIEVED,
            "attributesToHighlight": ["title", "body"],
            "attributesToCrop": ["body"],
            "cropLength": rules.CROP_WORDS,
            "highlightPreTag": rules.MARK_OPEN,
            "highlightPostTag": rules.MARK_CLOSE,
            "matchingStrategy": "last" if sort == "relevance" else "all",
        }
        order = rules.sort_rules(sort)
        if order:
            body["sort"] = order
        hits: list[dict[str, Any]] = (await self.index.search(POSTS, body)).get("hits", [])
        page, more = hits[:limit], len(hits) > limit
        items = []
        for hit in page:
            formatted = hit.get("_formatted") or {}
            items.append(
                {
                    "post_id": hit.get("post_id"),
                    "title": hit.get("title"),
                    "community": hit.get("community"),
                    "author": hit.get("author"),
                    "score": hit.get("score", 0),
                    "created_at": _iso(hit.get("created_at")),
                    "highlight": {
                        "title": rules.escape_highlight(str(formatted.get("title") or "")),
                        "body": rules.escape_highlight(str(formatted.get("body") or "")),
                    },
                }
            )
        return {"items": items, "next_cursor": rules.next_cursor(sort, cursor, page, more)}

    async def communities_by_prefix(
        self, principal: Principal | None, prefix: str, limit: int
    ) -> list[dict[str, Any]]:
        """Typo-tolerant autocomplete from the index; while the index is unavailable,
        exact prefixes from the identity database."""
        scope = await self.scope(principal)
        body: dict[str, object] = {
            "q": prefix,
            "filter": rules.community_filter(scope),
            "limit": limit,
            "attributesToRetrieve": [
                "community_id",
                "name",
                "description",
                "visibility",
                "member_count",
                "created_at",
            ],
        }
        try:
            hits = (await self.index.search(COMMUNITIES, body)).get("hits", [])
        except Unavailable:
            rows = await self.communities.search_communities(prefix, limit, scope.user_id or "")
            return [community_item(r) for r in rows]
        return [
            {
                "community_id": h.get("community_id"),
                "name": h.get("name"),
                "description": h.get("description", ""),
                "visibility": h.get("visibility"),
                "member_count": h.get("member_count", 0),
                "created_at": _iso(h.get("created_at")),
            }
            for h in hits
        ]


def community_item(row: CommunityRow) -> dict[str, Any]:
    return {
        "community_id": row.community_id,
        "name": row.name,
        "description": row.description,
        "visibility": row.visibility,
        "member_count": row.member_count,
        "created_at": row.created_at,
    }
