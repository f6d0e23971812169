from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api.http import json, page_params

bp = Blueprint("users", url_prefix="/api/v1/users")


@bp.get("/<username:str>")
async def profile(request: Request, username: str) -> HTTPResponse:
    return json(await request.app.ctx.platform.users.profile(username))


@bp.get("/<username:str>/comments")
async def comments(request: Request, username: str) -> HTTPResponse:
    limit, cursor = page_params(request)
    users = request.app.ctx.platform.users
    return json(await users.comment_history(username, limit, cursor))
