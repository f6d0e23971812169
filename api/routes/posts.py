from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api import commands
from api.http import json, optional_principal, page_params, parse, principal
from domain.errors import ValidationFailed

bp = Blueprint("posts", url_prefix="/api/v1")

SORTS = ("new",)


@bp.post("/communities/<name:str>/posts")
async def create(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.CreatePost)
    return json(await request.app.ctx.platform.posts.create(user, name, cmd), 202)


@bp.get("/communities/<name:str>/posts")
async def community_posts(request: Request, name: str) -> HTTPResponse:
    sort = request.args.get("sort", "new")
    if sort not in SORTS:
        raise ValidationFailed(f"sort must be one of {', '.join(SORTS)}", {"sort": sort})
    limit, cursor = page_params(request)
    user = optional_principal(request)
    return json(await request.app.ctx.platform.posts.list_community(name, user, limit, cursor))


@bp.get("/posts/<post_id:str>")
async def get(request: Request, post_id: str) -> HTTPResponse:
    user = optional_principal(request)
    return json(await request.app.ctx.platform.posts.get(post_id, user))
