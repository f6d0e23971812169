"""OpenTelemetry tracing that follows one request through the log.

The API starts a span per request; the W3C `traceparent` of the current span travels
in the Kafka message headers of the event it publishes; each dataflow continues that
trace for the records it handles, with a span per record it writes to a store
(`write {step}`), and passes it on in the events it produces (the votes dataflow's
`score.changed` carries the trace of the vote it applied), so ranking and karma join
the same trace.

Configured from the environment: `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) exports over OTLP/HTTP to a collector or Jaeger;
`TRACE_DIR` writes one JSON line per span to `<TRACE_DIR>/<service>-<pid>.jsonl`
(local development and tests); neither leaves tracing off (no-op, no cost).
Sampling follows the standard `OTEL_TRACES_SAMPLER` variables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Span, SpanKind

from observability import logs

TRACEPARENT = "traceparent"
_enabled = False


def configure(service: str) -> bool:
    """Install a tracer provider for this process if the environment asks for one."""
    global _enabled
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    folder = os.environ.get("TRACE_DIR")
    if not endpoint and not folder:
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        out = (Path(folder) / f"{service.replace(':', '-')}-{os.getpid()}.jsonl").open(
            "a", buffering=1
        )
        provider.add_span_processor(
            BatchSpanProcessor(ConsoleSpanExporter(out=out, formatter=_json_line))
        )
    trace.set_tracer_provider(provider)
    _enabled = True
    return True


def _json_line(span: ReadableSpan) -> str:
    return span.to_json(indent=None) + "\n"


def enabled() -> bool:
    return _enabled


def tracer() -> trace.Tracer:
    return trace.get_tracer("agora")


def current_headers() -> list[tuple[str, str | bytes | None]]:
    """Kafka headers carrying the current span's context (empty when not tracing)."""
    if not _enabled:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()]


def traceparent_of(headers: Sequence[tuple[str, bytes | str | None]] | None) -> bytes | None:
    for key, value in headers or ():
        if key == TRACEPARENT and value:
            return value if isinstance(value, bytes) else value.encode()
    return None


@contextmanager
def continued(
    name: str, traceparent: bytes | None, **attributes: str | int
) -> Iterator[Span | None]:
    """A span continuing the trace a record carried; nothing when it carried none."""
    if not _enabled or traceparent is None:
        yield None
        return
    parent = propagate.extract({TRACEPARENT: traceparent.decode(errors="replace")})
    with tracer().start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span


def record_spans(name: str, parents: Sequence[bytes | None], **attributes: str | int) -> list[Span]:
    """One span per traced record of a batch (its store write), ended by the caller."""
    if not _enabled:
        return []
    spans = []
    for parent in parents:
        if parent is None:
            continue
        ctx = propagate.extract({TRACEPARENT: parent.decode(errors="replace")})
        spans.append(
            tracer().start_span(name, context=ctx, kind=SpanKind.CONSUMER, attributes=attributes)
        )
    return spans


def start_request(name: str, headers: dict[str, str]) -> tuple[Span, object] | None:
    """The span of one API request, made current; `end_request` closes it."""
    if not _enabled:
        return None
    span = tracer().start_span(name, context=propagate.extract(headers), kind=SpanKind.SERVER)
    token = context.attach(trace.set_span_in_context(span))
    logs.TRACE_ID.set(format(span.get_span_context().trace_id, "032x"))
    return span, token


def traceresponse(handle: tuple[Span, object] | None) -> str | None:
    """The W3C `traceresponse` header value: lets a caller find its request's trace."""
    if handle is None:
        return None
    ctx = handle[0].get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def end_request(handle: tuple[Span, object] | None, status: int) -> None:
    if handle is None:
        return
    span, token = handle
    span.set_attribute("http.response.status_code", status)
    span.end()
    context.detach(token)  # type: ignore[arg-type]
