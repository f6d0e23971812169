"""JSON logs for every process, with the request id and trace id of what is being
handled, and nothing secret in them.

`configure(service)` sends every logger's records to stderr as one JSON object per
line. A filter scrubs what must never reach a log whatever a caller passes: bearer
tokens and JWTs, refresh tokens, `password` values, and IP addresses (a client's
address is personal data; only its salted hash may be kept).
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
TRACE_ID: ContextVar[str | None] = ContextVar("trace_id", default=None)

REDACTED = "[redacted]"
SECRETS = [
    # JWTs (three base64url parts, the first one a JSON header)
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    re.compile(r"(?i)(bearer\s+)\S+"),
    re.compile(
        r"(?i)((?:password|new_password|refresh_token|access_token|token)\W{1,4})[^\s,&\"'}]+"
    ),
    # IPv4 and IPv6 addresses
    re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"),
    # (an IPv6 address has "::" or a hex letter, which a time of day has not)
    re.compile(
        r"(?i)(?<![\w:])(?=[0-9a-f:]*(?:::|[a-f]))(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])"
    ),
]


def scrub(text: str) -> str:
    for pattern in SECRETS:
        text = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + REDACTED, text)
    return text


class Context(logging.Filter):
    """Adds the service, request id and trace id; scrubs secrets from the message."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = REQUEST_ID.get()
        record.trace_id = TRACE_ID.get()
        message = record.getMessage()
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def configure(service: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}{service}{request_id}{trace_id}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(Context(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("websockets", "cassandra", "kafka", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
