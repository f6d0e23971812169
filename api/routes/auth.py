from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, empty

from api import commands
from api.http import json, parse, platform

bp = Blueprint("auth", url_prefix="/api/v1/auth")


@bp.post("/register")
async def register(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.Register)
    return json(await platform(request).auth.register(cmd), 201)


@bp.post("/login")
async def login(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.Login)
    return json(await platform(request).auth.login(cmd))


@bp.post("/refresh")
async def refresh(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.RefreshToken)
    return json(await platform(request).auth.refresh(cmd.refresh_token))


@bp.post("/logout")
async def logout(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.RefreshToken)
    await platform(request).auth.logout(cmd.refresh_token)
    return empty(204)
