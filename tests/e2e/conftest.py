"""End-to-end fixtures: the API and the dataflows as real processes on the real stack."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.ids import new_id
from tests.processes import Process, start_api, start_dataflow, wait_for

DATAFLOWS = ("content", "votes", "ranking", "karma", "mentions", "media", "spam", "search")

# The functional tests model many actions per user (one owner creates several
# communities, one author posts dozens of times, voters vote in bursts): their API runs
# the development profile with these per-user quotas raised. Every API a test starts
# inherits them; tests/e2e/test_rate_limits.py starts one with the defaults.
RAISED_LIMITS = {
    "RATE_LIMIT_USER_WRITE": "100000/60",
    "RATE_LIMIT_POST": "100000/3600",
    "RATE_LIMIT_COMMENT": "100000/3600",
    "RATE_LIMIT_VOTE": "100000/60",
    "RATE_LIMIT_COMMUNITY": "100000/86400",
    "RATE_LIMIT_REPORT": "100000/3600",
    "RATE_LIMIT_UPLOAD": "100000/3600",
    "RATE_LIMIT_LOGIN_FAILURE_ACCOUNT": "100000/900",
    # authors here post in bursts on purpose: the spam dataflow flags them but does not
    # shadow-ban (tests/e2e/test_spam_flow.py checks automatic shadow-bans itself)
    "SPAM_AUTO_SHADOW_BAN": "0",
}


@pytest.fixture(scope="session")
def log_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="agora-test-logs-"))


@dataclass
class Platform:
    base: str
    api: Process
    flows: dict[str, Process]
    log_dir: Path

    def restart_flow(self, name: str) -> Process:
        self.flows[name] = start_dataflow(name, self.log_dir)
        return self.flows[name]


@pytest.fixture(scope="session")
def trace_dir() -> Path:
    """Where the session's processes write their spans (one JSON line each)."""
    return Path(tempfile.mkdtemp(prefix="agora-traces-"))


@pytest.fixture(scope="session")
def platform(stack, log_dir, trace_dir) -> Iterator[Platform]:
    os.environ["TRACE_DIR"] = str(trace_dir)
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "200"  # flush spans to the files quickly
    os.environ.update(RAISED_LIMITS)
    flows = {name: start_dataflow(name, log_dir) for name in DATAFLOWS}
    relay = Process("relay", ["-m", "api.relay"], log_dir).start()
    api, base = start_api(log_dir)
    yield Platform(base, api, flows, log_dir)
    api.stop()
    relay.stop()
    for proc in flows.values():
        proc.stop()


@dataclass
class User:
    username: str
    password: str
    user_id: str
    token: str
    refresh: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Client:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=f"{base}/api/v1", timeout=30)

    def register(self, prefix: str = "u") -> User:
        name = f"{prefix}{new_id()[-10:].lower()}"
        password = "correct horse battery"
        r = self.http.post(
            "/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": password},
        )
        assert r.status_code == 201, r.text
        user_id = r.json()["user_id"]
        tokens = self.login(name, password)
        return User(name, password, user_id, tokens["access_token"], tokens["refresh_token"])

    def login(self, login: str, password: str) -> dict[str, Any]:
        r = self.http.post("/auth/login", json={"login": login, "password": password})
        assert r.status_code == 200, r.text
        return r.json()

    def community(self, owner: User) -> str:
        name = f"c{new_id()[-12:].lower()}"
        r = self.http.post(
            "/communities", json={"name": name, "description": "test"}, headers=owner.headers
        )
        assert r.status_code == 201, r.text
        return name

    def post(self, author: User, community: str, title: str = "hello") -> str:
        r = self.http.post(
            f"/communities/{community}/posts",
            # the same author may not post the same content twice within 24 h
            json={"title": title, "kind": "text", "body": f"body {new_id()}"},
            headers=author.headers,
        )
        assert r.status_code == 202, r.text
        post_id: str = r.json()["post_id"]
        wait_for(
            lambda: self.http.get(f"/posts/{post_id}").status_code == 200,
            timeout=60,
            what=f"post {post_id} to be materialised",
        )
        return post_id

    def vote(
        self, user: User, target_id: str, direction: int, target_type: str = "post"
    ) -> httpx.Response:
        return self.http.put(
            "/votes",
            json={"target_id": target_id, "target_type": target_type, "direction": direction},
            headers=user.headers,
        )

    def community_info(self, name: str) -> dict[str, Any]:
        r = self.http.get(f"/communities/{name}")
        assert r.status_code == 200, r.text
        return r.json()

    def listing(self, path: str, user: User | None = None) -> dict[str, Any]:
        r = self.http.get(path, headers=user.headers if user else None)
        assert r.status_code == 200, r.text
        return r.json()

    def get_post(self, post_id: str, user: User | None = None) -> dict[str, Any]:
        r = self.http.get(f"/posts/{post_id}", headers=user.headers if user else None)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="session")
def client(platform) -> Client:
    return Client(platform.base)
