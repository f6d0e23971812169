from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, empty

from api import commands
from api.http import json, parse

bp = Blueprint("auth", url_prefix="/api/v1/auth")


@bp.post("/register")
async def register(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.Register)
    return json(await request.app.ctx.platform.auth.register(cmd), 201)


@bp.post("/login")
async def login(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.Login)
    return json(await request.app.ctx.platform.auth.login(cmd))


@bp.post("/refresh")
async def refresh(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.RefreshToken)
    return json(await request.app.ctx.platform.auth.refresh(cmd.refresh_token))


@bp.post("/logout")
async def logout(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.RefreshToken)
    await request.app.ctx.platform.auth.logout(cmd.refresh_token)
    return empty(204)
