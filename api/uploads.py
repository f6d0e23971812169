"""A multipart upload streamed to a temporary file: the body is parsed chunk by chunk
as it arrives (python-multipart), so an upload is never held whole in memory, and
reading stops as soon as the file part passes the size limit."""

from __future__ import annotations

import tempfile
from typing import IO

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from sanic import Request

from domain.errors import DomainError, ValidationFailed

FIELD = "file"
SLACK = 64 * 1024  # room for the multipart headers and boundaries around the file


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


class _FilePart:
    """Collects the `file` part into a spooled temporary file (on disk past 1 MiB)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=1 << 20)
        self.size = 0
        self.found = False
        self._in_file = False
        self._header_field = b""
        self._header_value = b""
        self._disposition = b""
        self.too_large = False

    def on_part_begin(self) -> None:
        self._disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_field = self._header_value = b""

    def on_headers_finished(self) -> None:
        _kind, params = parse_options_header(self._disposition)
        self._in_file = params.get(b"name") == FIELD.encode() and not self.found

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            return
        self.size += end - start
        if self.size > self.limit:
            self.too_large = True
            return
        self.file.write(data[start:end])

    def on_part_end(self) -> None:
        if self._in_file:
            self.found = True
        self._in_file = False


async def receive_file(request: Request, limit: int) -> tuple[IO[bytes], int]:
    """The `file` part of a streamed multipart body, rewound, and its size.

    400 without a multipart body or a `file` part; 413 past `limit` bytes (judged from
    Content-Length when the client sent one, else while reading)."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ValidationFailed(
            "send the image as multipart/form-data", {"content-type": "multipart/form-data"}
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + SLACK:
        raise PayloadTooLarge(f"uploads are limited to {limit} bytes", {"limit": limit})
    part = _FilePart(limit)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": part.on_part_begin,
            "on_header_field": part.on_header_field,
            "on_header_value": part.on_header_value,
            "on_header_end": part.on_header_end,
            "on_headers_finished": part.on_headers_finished,
            "on_part_data": part.on_part_data,
            "on_part_end": part.on_part_end,
        },
    )
    try:
        while True:
            chunk = await request.stream.read() if request.stream else None  # type: ignore[attr-defined]
            if chunk is None:
                break
            parser.write(chunk)
            if part.too_large:
                raise PayloadTooLarge(f"uploads are limited to {limit} bytes", {"limit": limit})
        parser.finalize()
    except DomainError:
        part.file.close()
        raise
    except Exception as exc:  # the parser's errors about a malformed body
        part.file.close()
        raise ValidationFailed("malformed multipart body", {"body": type(exc).__name__}) from None
    if not part.found:
        part.file.close()
        raise ValidationFailed("a `file` part is required", {FIELD: "missing"})
    part.file.seek(0)
    return part.file, part.size
