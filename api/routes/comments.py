from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api import commands
from api.http import json, optional_principal, page_params, parse, platform, principal
from api.idempotency import create_once
from domain.comments import SORTS
from domain.errors import ValidationFailed

bp = Blueprint("comments", url_prefix="/api/v1")

DEFAULT_LEVELS = 3


@bp.post("/posts/<post_id:str>/comments")
async def create(request: Request, post_id: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.CreateComment)
    comments = platform(request).comments
    return await create_once(
        request, user, "comments", cmd, 202, lambda: comments.create(user, post_id, cmd)
    )


@bp.get("/posts/<post_id:str>/comments")
async def tree(request: Request, post_id: str) -> HTTPResponse:
    sort = request.args.get("sort", "best")
    if sort not in SORTS:
        raise ValidationFailed(f"sort must be one of {', '.join(SORTS)}", {"sort": sort})
    raw_depth = request.args.get("depth", str(DEFAULT_LEVELS))
    try:
        levels = int(raw_depth)
    except ValueError:
        raise ValidationFailed("depth must be an integer", {"depth": raw_depth}) from None
    limit, cursor = page_params(request)
    result = await platform(request).comments.tree(
        post_id,
        optional_principal(request),
        sort=sort,
        levels=levels,
        limit=limit,
        cursor=cursor,
        parent_id=request.args.get("parent_id"),
    )
    return json(result)


@bp.patch("/comments/<comment_id:str>")
async def edit(request: Request, comment_id: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.EditComment)
    return json(await platform(request).comments.edit(user, comment_id, cmd), 202)


@bp.delete("/comments/<comment_id:str>")
async def delete(request: Request, comment_id: str) -> HTTPResponse:
    user = principal(request)
    return json(await platform(request).comments.delete(user, comment_id), 202)
