"""The Sanic application: `sanic api.app:create_app --factory` or `python -m api`."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from random import getrandbits

from sanic import HTTPResponse, Request, Sanic

from api import errors, limits, openapi
from api.bootstrap import bootstrap
from api.http import check_parameters, json, optional_principal, platform
from api.lifeline import die_with_parent
from api.mailer import run_sender
from api.routes import (
    auth,
    comments,
    communities,
    health,
    media,
    moderation,
    notifications,
    posts,
    search,
    users,
    votes,
)
from observability import heap, logs, tracing
from observability.metrics import RECORDING, RequestMetrics, worker_exited
from stores.settings import get_settings

log = logging.getLogger("api")
MAX_BODY_BYTES = 64 * 1024
# Routes an unverified account may not use while email verification is enforced.
CREATION_ROUTES = frozenset(
    {
        "api/v1/communities",
        "api/v1/communities/<name:str>/posts",
        "api/v1/posts/<post_id:str>/comments",
    }
)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_of(header: str | None) -> str:
    """The caller's X-Request-ID when it is a plain token, else a new one: 64 random
    bits in hex. It only ties log lines together, so neither time order (a ULID cost 4 %
    of a kept page's CPU) nor a system call per request is worth paying."""
    return header if header and REQUEST_ID.match(header) else f"{getrandbits(64):016x}"


def create_app(name: str = "agora") -> Sanic:
    # In a worker Sanic spawned: stop when the main process is gone, however it went,
    # rather than go on serving its port with nobody to stop it.
    die_with_parent()
    logs.configure("api")
    tracing.configure("api")
    app = Sanic(name, configure_logging=False)
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
        media,
        search,
    ):
        app.blueprint(module.bp)
    errors.install(app)
    spec = openapi.document()

    @app.get("/api/v1/openapi.json")
    async def openapi_json(_request: Request) -> HTTPResponse:
        return json(spec)

    @app.before_server_start
    async def start(app: Sanic) -> None:
        settings = get_settings()
        limits.configure_proxy(app, settings)
        app.ctx.platform = await bootstrap(settings)
        app.ctx.mail_stop = asyncio.Event()
        wired = app.ctx.platform
        app.add_task(run_sender(wired.mail, wired.smtp, app.ctx.mail_stop), name="mailer")
        app.add_task(wired.notices.run(), name="cache_notices")
        heap.time_collections()
        heap.settle(settings.gc_young_threshold)

    @app.before_server_stop
    async def stop_mailer(app: Sanic) -> None:
        app.ctx.mail_stop.set()

    @app.after_server_stop
    async def stop(app: Sanic) -> None:
        await app.ctx.platform.close()
        worker_exited(os.getpid())

    metrics = RequestMetrics()

    # One request and one response middleware calling each step in turn: Sanic's
    # middleware runner costs a few microseconds per middleware and request, a
    # measurable share of a kept page.
    @app.on_request
    async def admitted(request: Request) -> None:
        started(request)
        await account_gate(request)
        await limits.take(request)

    @app.on_response
    async def answered(request: Request, response: HTTPResponse) -> None:
        observed(request, response, metrics)
        limits.add_headers(request, response)

    return app


def started(request: Request) -> None:
    request.ctx.started = time.perf_counter()
    request.ctx.request_id = request_id_of(request.headers.get("x-request-id"))
    logs.REQUEST_ID.set(request.ctx.request_id)
    if tracing.enabled():
        route = request.route.path if request.route else "unmatched"
        request.ctx.trace = tracing.start_request(
            f"{request.method} /{route}", {"traceparent": request.headers.get("traceparent", "")}
        )
    check_parameters(request)


async def account_gate(request: Request) -> None:
    """A token of a deleted account, or one issued before a password reset, is refused
    here on every route; with enforcement on, unverified accounts may not create
    communities, posts or comments."""
    who = optional_principal(request)
    if who is not None:
        route = request.route.path if request.route else ""
        creates = request.method == "POST" and route.rstrip("/") in CREATION_ROUTES
        await platform(request).gate.admit(who, creates)


def observed(request: Request, response: HTTPResponse, metrics: RequestMetrics) -> None:
    request_id = getattr(request.ctx, "request_id", None)
    if request_id:
        response.headers["X-Request-ID"] = request_id
    route = request.route.path if request.route else "unmatched"
    started_at = getattr(request.ctx, "started", None)
    if RECORDING:
        seconds = None if started_at is None else time.perf_counter() - started_at
        metrics.record(route, request.method, response.status, seconds)
    if response.status >= 400:
        log.info("%s %s answered %s", request.method, route, response.status)
    trace_handle = getattr(request.ctx, "trace", None)
    if trace_handle is not None:
        answer = tracing.traceresponse(trace_handle)
        if answer:
            response.headers["traceresponse"] = answer
        tracing.end_request(trace_handle, response.status)
