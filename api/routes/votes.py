from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api import commands
from api.http import json, parse, platform, principal

bp = Blueprint("votes", url_prefix="/api/v1")


@bp.put("/votes")
async def cast(request: Request) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.CastVote)
    return json(await platform(request).votes.cast(user, cmd))
