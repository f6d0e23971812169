from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, empty

from api import commands
from api.http import json, parse, platform
from api.limits import client_of

bp = Blueprint("auth", url_prefix="/api/v1/auth")


@bp.post("/register")
async def register(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.Register)
    return json(await platform(request).auth.register(cmd), 201)


@bp.post("/login")
async def login(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.Login)
    return json(await platform(request).auth.login(cmd, client_of(request)))


@bp.post("/refresh")
async def refresh(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.RefreshToken)
    return json(await platform(request).auth.refresh(cmd.refresh_token))


@bp.post("/logout")
async def logout(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.RefreshToken)
    await platform(request).auth.logout(cmd.refresh_token)
    return empty(204)


@bp.post("/verify-email")
async def verify_email(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.VerifyEmail)
    return json(await platform(request).accounts.verify_email(str(cmd.email), cmd.code))


@bp.post("/verify-email/resend")
async def resend_verification(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.EmailAddress)
    await platform(request).accounts.resend_verification(str(cmd.email))
    return json({"status": "accepted"}, 202)


@bp.post("/password-reset")
async def password_reset(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.EmailAddress)
    await platform(request).accounts.request_password_reset(str(cmd.email))
    return json({"status": "accepted"}, 202)


@bp.post("/password-reset/confirm")
async def password_reset_confirm(request: Request) -> HTTPResponse:
    cmd = parse(request, commands.ConfirmPasswordReset)
    await platform(request).accounts.confirm_password_reset(
        str(cmd.email), cmd.code, cmd.new_password
    )
    return json({"status": "password_changed"})
