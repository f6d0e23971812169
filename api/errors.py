"""Every error leaves as `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import logging

from asyncpg import CannotConnectNowError, PostgresConnectionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sanic import HTTPResponse, Request, Sanic
from sanic.exceptions import SanicException

from api.http import json
from domain.errors import DomainError, RateLimited
from stores import cql

log = logging.getLogger("api.errors")

SANIC_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
}


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install(app: Sanic) -> None:
    @app.exception(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> HTTPResponse:
        retry_after = exc.retry_after or (1 if exc.status in (429, 503) else None)
        headers = {"Retry-After": str(retry_after)} if retry_after else {}
        if isinstance(exc, RateLimited):
            headers.update(exc.verdict.headers())
        return json(error_body(exc.code, exc.message, exc.details), exc.status, headers)

    @app.exception(SanicException)
    async def sanic_error(_request: Request, exc: SanicException) -> HTTPResponse:
        status = int(getattr(exc, "status_code", 500) or 500)
        code = SANIC_CODES.get(status, "error")
        message = str(exc) or code.replace("_", " ")
        if status >= 500:
            log.exception("server error")
            message = "internal error"
        return json(error_body(code, message), status)

    @app.exception(
        CannotConnectNowError,
        PostgresConnectionError,
        RedisConnectionError,
        RedisTimeoutError,
        ConnectionError,
        OSError,
        *cql.UNAVAILABLE,
    )
    async def dependency_down(_request: Request, exc: Exception) -> HTTPResponse:
        log.warning("dependency unavailable: %s", type(exc).__name__)
        body = error_body("unavailable", "a dependency is unavailable, retry shortly")
        return json(body, 503, {"Retry-After": "1"})

    @app.exception(Exception)
    async def unexpected(_request: Request, exc: Exception) -> HTTPResponse:
        log.exception("unhandled error", exc_info=exc)
        return json(error_body("internal_error", "internal error"), 500)
