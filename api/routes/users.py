from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api.http import json

bp = Blueprint("users", url_prefix="/api/v1/users")


@bp.get("/<username:str>")
async def profile(request: Request, username: str) -> HTTPResponse:
    return json(await request.app.ctx.platform.users.profile(username))
