"""The Sanic application: `sanic api.app:create_app --factory` or `python -m api`."""

from __future__ import annotations

import os
import time

from sanic import HTTPResponse, Request, Sanic

from api import errors, openapi
from api.bootstrap import bootstrap
from api.http import check_parameters, json
from api.routes import (
    auth,
    comments,
    communities,
    health,
    moderation,
    notifications,
    posts,
    users,
    votes,
)
from observability.metrics import HTTP_LATENCY, HTTP_REQUESTS, worker_exited
from stores.settings import get_settings

MAX_BODY_BYTES = 64 * 1024


def create_app(name: str = "agora") -> Sanic:
    app = Sanic(name)
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.KEEP_ALIVE_TIMEOUT = 30
    app.config.ACCESS_LOG = False
    for module in (
        auth,
        communities,
        posts,
        votes,
        moderation,
        health,
        comments,
        users,
        notifications,
    ):
        app.blueprint(module.bp)
    errors.install(app)
    spec = openapi.document()

    @app.get("/api/v1/openapi.json")
    async def openapi_json(_request: Request) -> HTTPResponse:
        return json(spec)

    @app.before_server_start
    async def start(app: Sanic) -> None:
        app.ctx.platform = await bootstrap(get_settings())

    @app.after_server_stop
    async def stop(app: Sanic) -> None:
        await app.ctx.platform.close()
        worker_exited(os.getpid())

    @app.on_request
    async def started(request: Request) -> None:
        request.ctx.started = time.perf_counter()
        check_parameters(request)

    @app.on_response
    async def observed(request: Request, response: HTTPResponse) -> None:
        route = request.route.path if request.route else "unmatched"
        status = str(response.status)
        HTTP_REQUESTS.labels(route, request.method, status).inc()
        started_at = getattr(request.ctx, "started", None)
        if started_at is not None:
            HTTP_LATENCY.labels(route, status).observe(time.perf_counter() - started_at)

    return app
