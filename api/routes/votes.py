from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api import commands
from api.http import json, parse, platform, principal
from api.limits import pending_charges, record

bp = Blueprint("votes", url_prefix="/api/v1")


@bp.put("/votes")
async def cast(request: Request) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.CastVote)
    body, verdict = await platform(request).votes.cast_limited(user, cmd, pending_charges(request))
    record(request, verdict)
    return json(body)
