from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, empty

from api import commands
from api.http import json, optional_principal, page_params, parse, platform, principal
from api.idempotency import create_once

bp = Blueprint("posts", url_prefix="/api/v1")


@bp.post("/communities/<name:str>/posts")
async def create(request: Request, name: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.CreatePost)
    posts = platform(request).posts
    return await create_once(
        request, user, "posts", cmd, 202, lambda: posts.create(user, name, cmd)
    )


@bp.get("/communities/<name:str>/posts")
async def community_posts(request: Request, name: str) -> HTTPResponse:
    limit, cursor = page_params(request)
    user = optional_principal(request)
    listings = platform(request).listings
    sort, window = request.args.get("sort", "hot"), request.args.get("t")
    return json(await listings.community(name, user, sort, window, limit, cursor))


@bp.get("/feed")
async def feed(request: Request) -> HTTPResponse:
    user = principal(request)
    limit, cursor = page_params(request)
    sort, window = request.args.get("sort", "hot"), request.args.get("t")
    return json(await platform(request).listings.feed(user, sort, window, limit, cursor))


@bp.get("/posts/<post_id:str>")
async def get(request: Request, post_id: str) -> HTTPResponse:
    user = optional_principal(request)
    return json(await platform(request).posts.get(post_id, user))


@bp.patch("/posts/<post_id:str>")
async def edit(request: Request, post_id: str) -> HTTPResponse:
    user = principal(request)
    cmd = parse(request, commands.EditPost)
    return json(await platform(request).posts.edit(user, post_id, cmd), 202)


@bp.delete("/posts/<post_id:str>")
async def delete(request: Request, post_id: str) -> HTTPResponse:
    user = principal(request)
    return json(await platform(request).posts.delete(user, post_id), 202)


@bp.put("/posts/<post_id:str>/save")
async def save(request: Request, post_id: str) -> HTTPResponse:
    user = principal(request)
    await platform(request).posts.save(user, post_id, True)
    return empty()


@bp.delete("/posts/<post_id:str>/save")
async def unsave(request: Request, post_id: str) -> HTTPResponse:
    user = principal(request)
    await platform(request).posts.save(user, post_id, False)
    return empty()
