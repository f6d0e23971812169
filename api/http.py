"""HTTP helpers shared by routes: body -> command, principal from the bearer token,
paging parameters, JSON responses."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import unquote

import orjson
from pydantic import ValidationError
from sanic import HTTPResponse, Request
from sanic.response import raw

from api.bootstrap import Platform
from api.commands import Command, control_character
from api.security import Principal
from domain.errors import Unauthorized, ValidationFailed

C = TypeVar("C", bound=Command)

MAX_LIMIT = 100
DEFAULT_LIMIT = 25


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def encode(body: Any) -> bytes:
    return orjson.dumps(body, default=_default)


def json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HTTPResponse:
    return json_bytes(encode(body), status, headers)


def json_bytes(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> HTTPResponse:
    return raw(body, status=status, headers=headers, content_type="application/json")


def parse(request: Request, model: type[C]) -> C:
    """Validate the JSON body as `model`; a 400 naming the fields otherwise."""
    if not request.body:
        raise ValidationFailed("a JSON body is required", {"body": "missing"})
    try:
        request.body.decode()
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            "body is not valid UTF-8", {"body": f"invalid UTF-8 at byte {exc.start}"}
        ) from None
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise ValidationFailed("body is not valid JSON", {"body": "malformed JSON"}) from None
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object", {"body": "not an object"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = {
            ".".join(str(p) for p in err["loc"]) or "body": err["msg"] for err in exc.errors()
        }
        raise ValidationFailed("request body is not valid", details) from None


# What a raw path or query string must contain for a parameter to hold a control
# character once decoded: the character itself or a percent escape.
MAY_HIDE_CONTROL = re.compile(r"[%\x00-\x1f\x7f]")


def check_parameters(request: Request) -> None:
    """Path and query parameters carry no control characters: 400 naming the parameter.
    A request whose raw path and query have neither a control character nor a percent
    escape (most of them) needs no look at each parameter."""
    if not (MAY_HIDE_CONTROL.search(request.path) or MAY_HIDE_CONTROL.search(request.query_string)):
        return
    for name, value in request.match_info.items():
        bad = control_character(unquote(value)) if isinstance(value, str) else None
        if bad is not None:
            raise ValidationFailed(
                f"path parameter {name} must not contain control characters",
                {name: f"control character {bad}"},
            )
    for name, values in request.args.items():
        if control_character(name) is not None:
            raise ValidationFailed(
                "query parameter names must not contain control characters",
                {"query": f"parameter name {name!r}"},
            )
        for value in values:
            bad = control_character(value)
            if bad is not None:
                raise ValidationFailed(
                    f"query parameter {name} must not contain control characters",
                    {name: f"control character {bad}"},
                )


def platform(request: Request) -> Platform:
    """The services this process wired at start-up (`api.bootstrap`), typed so that every
    route's call into a service is checked."""
    wired: Platform = request.app.ctx.platform
    return wired


def principal(request: Request) -> Principal:
    """The signed-in user; 401 without a valid bearer token."""
    found = optional_principal(request)
    if found is None:
        raise Unauthorized("sign in required", {"authorization": "missing"})
    return found


def optional_principal(request: Request) -> Principal | None:
    known: Principal | None = getattr(request.ctx, "principal", None)
    if known is not None:
        return known  # already verified for this request (by the rate limiter)
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("bearer token required", {"authorization": "malformed"})
    found = platform(request).tokens.verify(token.strip())
    request.ctx.principal = found
    return found


def page_params(request: Request) -> tuple[int, str | None]:
    raw_limit = request.args.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        raise ValidationFailed("limit must be an integer", {"limit": raw_limit}) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be 1..{MAX_LIMIT}", {"limit": limit})
    return limit, request.args.get("cursor")
