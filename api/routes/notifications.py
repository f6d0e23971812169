from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api import commands
from api.http import json, page_params, parse, platform, principal
from domain.errors import ValidationFailed

bp = Blueprint("notifications", url_prefix="/api/v1/notifications")


@bp.get("")
async def inbox(request: Request) -> HTTPResponse:
    user = principal(request)
    unread = request.args.get("unread", "false").lower()
    if unread not in ("true", "false", "1", "0"):
        raise ValidationFailed("unread must be true or false", {"unread": unread})
    limit, cursor = page_params(request)
    service = platform(request).notifications
    return json(await service.inbox(user, unread in ("true", "1"), limit, cursor))


@bp.post("/read")
async def mark_read(request: Request) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.MarkRead)
    return json(await platform(request).notifications.mark_read(user, cmd))


@bp.get("/unread-count")
async def unread_count(request: Request) -> HTTPResponse:
    user = principal(request)
    return json(await platform(request).notifications.unread_count(user))
