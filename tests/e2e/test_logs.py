"""The API's logs are JSON lines with the request id, and no token, password or IP
address ever reaches them, whatever requests carry."""

from __future__ import annotations

import json
import re

import httpx

IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")


def test_logs_are_json_with_request_ids_and_no_secrets(client, platform) -> None:
    log_path = platform.api.log_path
    start = log_path.stat().st_size
    secret = "s3cret-Passw0rd-that-must-not-leak"
    user = client.register("lg")
    http = client.http
    # A failed login with a password, a refresh, an authenticated write, and requests
    # that carry tokens and passwords into errors.
    assert (
        http.post("/auth/login", json={"login": user.username, "password": secret}).status_code
        == 401
    )
    refreshed = http.post("/auth/refresh", json={"refresh_token": user.refresh})
    assert refreshed.status_code == 200
    bad = http.post(
        "/communities",
        json={"name": "x", "password": secret},
        headers={**user.headers, "X-Request-ID": "rid-logs-1"},
    )
    assert bad.status_code == 400
    assert bad.headers["X-Request-ID"] == "rid-logs-1"
    tampered = {"Authorization": f"Bearer {user.token}x"}
    assert http.get("/notifications", headers=tampered).status_code == 401
    forged = http.get(
        "/feed", headers={"Authorization": "Bearer not-a-token", "X-Request-ID": "bad id!"}
    )
    assert forged.status_code == 401 and forged.headers["X-Request-ID"] != "bad id!"

    def lines() -> list[dict[str, object]]:
        text = log_path.read_text(errors="replace")[start:]
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    records = lines()  # every line parses as JSON
    assert any(r.get("request_id") == "rid-logs-1" for r in records), records[-5:]
    text = log_path.read_text(errors="replace")[start:]
    for leaked in (
        secret,
        user.password,
        user.token,
        user.refresh,
        refreshed.json()["access_token"],
    ):
        assert leaked not in text
    assert not IPV4.search(text), [line for line in text.splitlines() if IPV4.search(line)][:3]
    assert all(r.get("service") == "api" for r in records)
    assert httpx.get(f"{platform.base}/healthz").status_code == 200
