from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, empty

from api import commands
from api.http import json, optional_principal, page_params, parse, platform, principal

bp = Blueprint("users", url_prefix="/api/v1/users")


@bp.get("/me")
async def me(request: Request) -> HTTPResponse:
    return json(await platform(request).accounts.me(principal(request)))


@bp.delete("/me")
async def delete_me(request: Request) -> HTTPResponse:
    who = principal(request)
    cmd = parse(request, commands.DeleteAccount)
    await platform(request).accounts.delete(who, cmd.password)
    return empty(204)


@bp.get("/me/saved")
async def saved(request: Request) -> HTTPResponse:
    user = principal(request)
    limit, cursor = page_params(request)
    return json(await platform(request).posts.saved_posts(user, limit, cursor))


@bp.get("/<username:str>")
async def profile(request: Request, username: str) -> HTTPResponse:
    return json(await platform(request).users.profile(username))


@bp.get("/<username:str>/posts")
async def posts(request: Request, username: str) -> HTTPResponse:
    limit, cursor = page_params(request)
    users = platform(request).users
    return json(await users.post_history(username, optional_principal(request), limit, cursor))


@bp.get("/<username:str>/comments")
async def comments(request: Request, username: str) -> HTTPResponse:
    limit, cursor = page_params(request)
    users = platform(request).users
    return json(await users.comment_history(username, optional_principal(request), limit, cursor))
