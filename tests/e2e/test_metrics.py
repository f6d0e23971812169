"""Metrics across processes: the API's /metrics is one view of all its workers, each
dataflow and the push server serve their own (records, dead letters, sockets)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka import Producer
from websockets.sync.client import connect

from domain.ids import new_id
from tests.processes import Process, free_port, start_api, start_ws, wait_for


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def two_worker_api(stack, log_dir) -> Iterator[str]:
    proc, base = start_api(log_dir, workers=2)
    yield base
    proc.stop()


def test_api_metrics_are_one_view_across_workers(two_worker_api: str) -> None:
    base = two_worker_api
    marker = f"/api/v1/communities/nope{new_id()[-8:].lower()}"
    before = sample(
        httpx.get(f"{base}/metrics").text,
        "agora_http_requests_total",
        route="api/v1/communities/<name:str>",
        status="404",
    )
    for _ in range(40):  # a new connection each: they spread over both workers
        assert httpx.get(f"{base}{marker}").status_code == 404
    for _ in range(6):  # whichever worker answers the scrape, the sum is the same
        text = httpx.get(f"{base}/metrics").text
        after = sample(
            text, "agora_http_requests_total", route="api/v1/communities/<name:str>", status="404"
        )
        assert after - before == 40, text[:2000]
    assert sample(text, "agora_http_request_seconds_count", status="404") >= 40


def test_a_dataflow_serves_its_records_and_dead_letters(settings, log_dir) -> None:
    port = free_port()
    flow = Process(
        f"metrics-mentions-{port}",
        ["-m", "dataflows", "run", "mentions", "--metrics-port", str(port)],
        log_dir,
        env={"RECOVERY_ROOT": tempfile.mkdtemp(prefix="agora-metrics-rec-")},
    ).start()
    try:
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        producer.produce("posts", value=b"not an event", key=b"m")
        assert producer.flush(10) == 0

        def scraped() -> str | None:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                assert flow.alive(), flow.log_tail()
                return None
            letters = sample(text, "agora_dead_letters_total", dataflow="mentions", step="decode")
            return text if letters >= 1 else None

        text = wait_for(scraped, timeout=90, interval=0.5, what="mentions /metrics")
        assert sample(text, "agora_dataflow_records_total", dataflow="mentions", topic="posts") >= 1
    finally:
        flow.stop()


def test_push_server_counts_sockets(client, log_dir) -> None:
    proc, ws_base = start_ws(log_dir)
    http_base = ws_base.replace("ws://", "http://")
    try:
        user = client.register("mx")
        with connect(f"{ws_base}/ws?token={user.token}"):

            def counted() -> bool:
                text = httpx.get(f"{http_base}/metrics").text
                return sample(text, "agora_ws_connections") == 1

            wait_for(counted, timeout=10, what="one socket counted")
        assert re.search(r"^agora_ws_pushes_total", httpx.get(f"{http_base}/metrics").text, re.M)
    finally:
        proc.stop()
