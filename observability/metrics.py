"""Every Prometheus metric the platform exports, named once.

The API runs several worker processes: `enable_multiprocess` (called by `python -m
api` before any worker starts) points prometheus_client at a fresh directory shared by
the workers, and `/metrics` aggregates it, so a scrape sees one view of all workers.
Dataflows and the push server are single processes serving their own `/metrics`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# `METRICS=off` stops the API recording request metrics (to measure what they cost).
RECORDING = os.environ.get("METRICS", "on").lower() not in ("off", "0", "false")

# API
HTTP_REQUESTS = Counter(
    "agora_http_requests_total", "HTTP requests by route and status", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "agora_http_request_seconds",
    "HTTP request latency by route and status",
    ["route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class RequestMetrics:
    """Each (route, method, status)'s counter and histogram children, looked up once per
    process: `labels()` hashes and validates its arguments on every call, a measurable
    share of a cheap request."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def record(self, route: str, method: str, status: int, seconds: float | None) -> None:
        """Count the request, and observe its latency when it is known (a request
        refused before the first middleware ran has no start time)."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            label = str(status)
            children = (
                HTTP_REQUESTS.labels(route, method, label),
                HTTP_LATENCY.labels(route, label),
            )
            self._children[key] = children
        children[0].inc()
        if seconds is not None:
            children[1].observe(seconds)


# Dataflows
RECORDS = Counter(
    "agora_dataflow_records_total", "Records read from the log", ["dataflow", "topic"]
)
DEAD_LETTERS = Counter("agora_dead_letters_total", "Records dead-lettered", ["dataflow", "step"])
SINK_BATCHES = Histogram(
    "agora_sink_batch_seconds",
    "Time to write one sink batch (retries included)",
    ["dataflow", "step"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0),
)
SINK_RECORDS = Counter("agora_sink_records_total", "Records written by sinks", ["dataflow", "step"])
SINK_RETRIES = Counter(
    "agora_sink_retries_total", "Sink attempts that met a store outage", ["dataflow", "step"]
)
GC_SECONDS = Counter(
    "agora_gc_seconds_total",
    "Wall time in the cyclic garbage collector, by oldest generation collected",
    ["generation"],
)

# Push server
WS_CONNECTIONS = Gauge("agora_ws_connections", "Open WebSocket connections")
WS_PUSHES = Counter("agora_ws_pushes_total", "Messages pushed to sockets")
WS_DROPPED = Counter("agora_ws_dropped_total", "Sockets closed because their queue was full (1013)")


def enable_multiprocess(root: Path | None = None) -> Path:
    """A fresh shared directory for this API's worker processes (set before they start)."""
    folder = Path(tempfile.mkdtemp(prefix="agora-metrics-", dir=root))
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def cleanup_multiprocess(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def exposition() -> tuple[bytes, str]:
    """The metrics text: aggregated across workers in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


def serve(port: int) -> None:
    """`/metrics` of a single-process service, on loopback unless told otherwise."""
    start_http_server(port, addr=os.environ.get("METRICS_HOST", "127.0.0.1"))
