from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from api.http import json, platform, principal
from api.uploads import receive_file

bp = Blueprint("media", url_prefix="/api/v1/media")


@bp.post("", stream=True)
async def upload(request: Request) -> HTTPResponse:
    user = principal(request)
    wired = platform(request)
    file, size = await receive_file(request, wired.settings.media_max_bytes)
    with file:
        return json(await wired.media.upload(user, file, size), 202)


@bp.get("/<media_id:str>")
async def get(request: Request, media_id: str) -> HTTPResponse:
    return json(await platform(request).media.get(principal(request), media_id))
