from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, empty

from api import commands
from api.http import json, optional_principal, page_params, parse, platform, principal
from api.idempotency import create_once
from domain.errors import ValidationFailed

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
    if len(prefix) > 64:
        raise ValidationFailed("prefix must be at most 64 characters", {"prefix": len(prefix)})
    items = await platform(request).search.communities_by_prefix(
        optional_principal(request), prefix, limit
    )
    return json({"items": items, "next_cursor": None})


@bp.get("/<name:str>")
async def get(request: Request, name: str) -> HTTPResponse:
    return json(await platform(request).communities.get(name))


@bp.patch("/<name:str>")
async def update(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.UpdateCommunity)
    return json(await platform(request).communities.update(user, name, cmd))


@bp.post("/<name:str>/join")
async def join(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    status, body = await platform(request).communities.set_membership(user, name, True)
    return json(body, status)


@bp.post("/<name:str>/leave")
async def leave(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    _status, body = await platform(request).communities.set_membership(user, name, False)
    return json(body)


@bp.get("/<name:str>/join-requests")
async def join_requests(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    return json(await platform(request).communities.join_requests(user, name))


@bp.post("/<name:str>/join-requests/<username:str>/approve")
async def approve_join(request: Request, name: str, username: str) -> HTTPResponse:
    user = principal(request)
    communities = platform(request).communities
    return json(await communities.answer_join_request(user, name, username, True))


@bp.post("/<name:str>/join-requests/<username:str>/deny")
async def deny_join(request: Request, name: str, username: str) -> HTTPResponse:
    user = principal(request)
    communities = platform(request).communities
    return json(await communities.answer_join_request(user, name, username, False))


@bp.post("/<name:str>/approved-users")
async def approve_user(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.Username)
    return json(await platform(request).communities.approve_user(user, name, cmd.username))


@bp.get("/<name:str>/moderators")
async def moderators(request: Request, name: str) -> HTTPResponse:
    user = optional_principal(request)
    return json(await platform(request).communities.moderators(user, name))


@bp.post("/<name:str>/moderators")
async def add_moderator(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.Username)
    communities = platform(request).communities
    return json(await communities.set_moderator(user, name, cmd.username, True))


@bp.delete("/<name:str>/moderators/<username:str>")
async def remove_moderator(request: Request, name: str, username: str) -> HTTPResponse:
    user = principal(request)
    await platform(request).communities.set_moderator(user, name, username, False)
    return empty()
