from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api import commands
from api.http import json, page_params, parse, platform, principal
from api.idempotency import create_once

bp = Blueprint("communities", url_prefix="/api/v1/communities")


@bp.post("")
async def create(request: Request) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.CreateCommunity)
    communities = platform(request).communities
    return await create_once(
        request, user, "communities", cmd, 201, lambda: communities.create(user, cmd)
    )


@bp.get("")
async def autocomplete(request: Request) -> HTTPResponse:
    limit, _cursor = page_params(request)
    prefix = request.args.get("prefix", "")
    items = await platform(request).communities.autocomplete(prefix, limit)
    return json({"items": items, "next_cursor": None})


@bp.get("/<name:str>")
async def get(request: Request, name: str) -> HTTPResponse:
    return json(await platform(request).communities.get(name))


@bp.post("/<name:str>/join")
async def join(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    return json(await platform(request).communities.set_membership(user, name, True))


@bp.post("/<name:str>/leave")
async def leave(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    return json(await platform(request).communities.set_membership(user, name, False))
