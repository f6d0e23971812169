from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api import commands
from api.http import json, optional_principal, page_params, parse, platform, principal
from api.idempotency import create_once

bp = Blueprint("moderation", url_prefix="/api/v1")
PREFIX = "/communities/<name:str>/moderation"


@bp.post(f"{PREFIX}/pin")
async def pin(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.PinPost)
    return json(await platform(request).moderation.pin(user, name, cmd))


@bp.post(f"{PREFIX}/remove")
async def remove(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.ModerateContent)
    return json(await platform(request).moderation.moderate(user, name, cmd, "remove"))


@bp.post(f"{PREFIX}/approve")
async def approve(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.ModerateContent)
    return json(await platform(request).moderation.moderate(user, name, cmd, "approve"))


@bp.post(f"{PREFIX}/ban")
async def ban(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.Sanction)
    return json(await platform(request).moderation.ban(user, name, cmd))


@bp.post(f"{PREFIX}/unban")
async def unban(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.LiftSanction)
    return json(await platform(request).moderation.unban(user, name, cmd))


@bp.post(f"{PREFIX}/mute")
async def mute(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.Sanction)
    return json(await platform(request).moderation.mute(user, name, cmd))


@bp.post(f"{PREFIX}/shadow-ban")
async def shadow_ban(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.ShadowBan)
    return json(await platform(request).moderation.shadow_ban(user, name, cmd))


@bp.post(f"{PREFIX}/lock")
async def lock(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.LockPost)
    return json(await platform(request).moderation.lock(user, name, cmd))


@bp.post(f"{PREFIX}/flair")
async def flair(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.FlairPost)
    return json(await platform(request).moderation.flair(user, name, cmd))


@bp.get(f"{PREFIX}/log")
async def log(request: Request, name: str) -> HTTPResponse:
    limit, cursor = page_params(request)
    user = optional_principal(request)
    return json(await platform(request).moderation.log(user, name, limit, cursor))


@bp.get(f"{PREFIX}/queue")
async def queue(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    return json(await platform(request).moderation.queue(user, name))


@bp.post("/reports")
async def report(request: Request) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.FileReport)
    moderation = platform(request).moderation
    return await create_once(
        request, user, "reports", cmd, 201, lambda: moderation.report(user, cmd)
    )
