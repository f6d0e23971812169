"""Property-based requests from the served OpenAPI document (schemathesis): whatever
a client sends that the document allows, or nearly allows, the API never answers 5xx
(a 503 with Retry-After is the documented "retry" answer, never the client's fault)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.openapi import document

schema = schemathesis.openapi.from_dict(document())


@pytest.fixture(scope="module")
def signed_in(client) -> dict[str, str]:
    return client.register("st").headers


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: Any, platform, signed_in: dict[str, str]) -> None:
    response = case.call(base_url=platform.base, headers=signed_in, timeout=30)
    headers = {k.lower(): v[0] if isinstance(v, list) else v for k, v in response.headers.items()}
    assert response.status_code < 500 or (
        response.status_code == 503 and "retry-after" in headers
    ), f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    assert headers.get("content-type", "").startswith("application/json") or (
        response.status_code in (204, 304) or case.formatted_path.endswith("/metrics")
    ), f"{case.method} {case.formatted_path}: not JSON"
