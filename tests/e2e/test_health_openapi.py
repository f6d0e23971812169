"""Health endpoints and the OpenAPI document against the real route table."""

from __future__ import annotations

import httpx

from api.app import create_app


def test_health_and_ready(platform):
    assert httpx.get(f"{platform.base}/healthz").json()["status"] == "ok"
    ready = httpx.get(f"{platform.base}/readyz")
    assert ready.status_code == 200
    assert "kafka" in ready.json()["checks"] and "redis" in ready.json()["checks"]
    metrics = httpx.get(f"{platform.base}/metrics")
    assert "agora_http_requests_total" in metrics.text


def test_openapi_describes_exactly_the_routes(platform):
    doc = httpx.get(f"{platform.base}/api/v1/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    app = create_app("openapi_probe")
    served = set()
    for route in app.router.routes:
        path = "/" + route.path.strip("/")
        for part in route.parts:
            if part.startswith("<"):
                name = part[1:-1].split(":")[0]
                path = path.replace(part, "{" + name + "}")
        for method in route.methods:
            if method not in ("HEAD", "OPTIONS"):
                served.add((method, path))
    assert documented == served


def test_readyz_names_the_failing_dependency(platform):
    from tests.processes import Process, free_port, wait_for

    port = free_port()
    api = Process(
        f"api-noredis-{port}",
        ["-m", "api", "--port", str(port), "--workers", "1"],
        platform.log_dir,
        env={"REDIS_URL": "redis://127.0.0.1:1/0"},
    ).start()
    try:

        def answer() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            except httpx.HTTPError:
                return None

        r = wait_for(answer, timeout=60, what="the API to answer /readyz")
        assert r.status_code == 503
        body = r.json()["error"]
        assert body["code"] == "not_ready" and set(body["details"]) == {"redis"}
        # reads that need Redis answer 503, not 500
        listing = httpx.get(f"http://127.0.0.1:{port}/api/v1/communities/demo/posts")
        assert listing.status_code in (404, 503)
    finally:
        api.stop()
