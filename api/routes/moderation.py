from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api import commands
from api.http import json, parse, platform, principal

bp = Blueprint("moderation", url_prefix="/api/v1/communities")


@bp.post("/<name:str>/moderation/pin")
async def pin(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.PinPost)
    return json(await platform(request).moderation.pin(user, name, cmd))
