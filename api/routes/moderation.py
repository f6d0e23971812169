from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api import commands
from api.http import json, parse, principal

bp = Blueprint("moderation", url_prefix="/api/v1/communities")


@bp.post("/<name:str>/moderation/pin")
async def pin(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.PinPost)
    return json(await request.app.ctx.platform.moderation.pin(user, name, cmd))
