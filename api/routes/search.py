"""GET /search: posts by text, community, author; relevance, new or top."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api.http import json, optional_principal, page_params, platform
from domain import search as rules

bp = Blueprint("search", url_prefix="/api/v1/search")


@bp.get("")
async def search(request: Request) -> HTTPResponse:
    limit, cursor = page_params(request)
    body = await platform(request).search.posts(
        optional_principal(request),
        rules.parse_query(request.args.get("q")),
        request.args.get("community") or None,
        request.args.get("author") or None,
        rules.parse_sort(request.args.get("sort")),
        limit,
        cursor,
    )
    return json(body)
