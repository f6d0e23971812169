from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api.http import json, page_params, platform

bp = Blueprint("users", url_prefix="/api/v1/users")


@bp.get("/<username:str>")
async def profile(request: Request, username: str) -> HTTPResponse:
    return json(await platform(request).users.profile(username))


@bp.get("/<username:str>/comments")
async def comments(request: Request, username: str) -> HTTPResponse:
    limit, cursor = page_params(request)
    users = platform(request).users
    return json(await users.comment_history(username, limit, cursor))
