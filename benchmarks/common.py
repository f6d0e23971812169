"""Helpers for benchmarks: a seeded community with posts, minted tokens, percentiles."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from api.security import Principal, TokenService
from domain.ids import new_id
from stores.settings import Settings


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> str:
    return (
        f"n={len(values)} p50={percentile(values, 50) * 1000:.1f}ms "
        f"p99={percentile(values, 99) * 1000:.1f}ms "
        f"mean={statistics.fmean(values) * 1000:.1f}ms"
        if values
        else "n=0"
    )


def mint_tokens(settings: Settings, count: int) -> list[str]:
    """Access tokens for simulated users (the vote path checks the token, not a user row)."""
    service = TokenService(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, 3600)
    return [service.issue(Principal(new_id(), f"sim{i}")) for i in range(count)]


@dataclass
class Seed:
    community: str
    post_ids: list[str]
    headers: dict[str, str]


def seed_posts(base: str, count: int, prefix: str = "bench") -> Seed:
    http = httpx.Client(base_url=f"{base}/api/v1", timeout=30)
    name = f"{prefix}{new_id()[-8:].lower()}"
    password = "bench-password"
    http.post(
        "/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": password},
    ).raise_for_status()
    token = http.post("/auth/login", json={"login": name, "password": password}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    http.post("/communities", json={"name": name}, headers=headers).raise_for_status()
    post_ids = []
    for i in range(count):
        r = http.post(f"/communities/{name}/posts", json={"title": f"post {i}"}, headers=headers)
        r.raise_for_status()
        post_ids.append(r.json()["post_id"])
    deadline = time.monotonic() + 60
    for post_id in post_ids:
        while (found := http.get(f"/posts/{post_id}")).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"posts were not materialised within 60 s: {found.status_code} {found.text}"
                )
            time.sleep(0.05)
    return Seed(name, post_ids, headers)


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int
    raw: str


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


WRK_THREADS = 2


def run_wrk(
    url: str, script: str, seconds: int, connections: int, threads: int = WRK_THREADS
) -> WrkResult:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, p50, p99, int(non.group(1)) if non else 0, total, out)


def bench_limits() -> dict[str, str]:
    """The raised rate limits of `benchmarks/limits.env` (the limiter stays on)."""
    values: dict[str, str] = {}
    for line in (Path(__file__).parent / "limits.env").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def start_process(
    args: list[str], ready_url: str, timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `python <args>` (with `env` over this environment) and return once
    `ready_url` answers 200; kill it otherwise."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **bench_limits(), **(env or {})},
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{' '.join(args)} exited before it was ready")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{' '.join(args)} not ready after {timeout:.0f} s")


def start_bench_app(port: int = 8100, workers: int = 2) -> subprocess.Popen[bytes]:
    """The platform API + Lemmy-style baseline routes on one Sanic stack."""
    args = ["-m", "benchmarks.bench_app", "--port", str(port), "--workers", str(workers)]
    return start_process(args, f"http://127.0.0.1:{port}/readyz", timeout=180)


def ensure_baseline_db() -> None:
    subprocess.run(
        ["bash", "deploy/stack.sh", "createdb", "bench_lemmy"],
        check=True,
        stdout=subprocess.DEVNULL,
    )


# Each wrk thread keeps its own schedule of send times, Poisson-spaced at its share of
# the rate, and a connection ready to send waits for the next free slot. So the offered
# rate holds whatever the latency (a closed loop of fixed pauses offers less as answers
# slow), as long as enough connections are free; a schedule more than a second behind
# (the server stalled) starts again from now instead of sending the backlog at once.
# LuaJIT's FFI reads the monotonic clock: wrk's Lua has no clock of its own.
PACED = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } paced_timespec;
int clock_gettime(int clock, paced_timespec *tp);
]]
local clock = ffi.new("paced_timespec")
local gap_ms = %(gap_ms).4f
local due = nil
delay = function()
  ffi.C.clock_gettime(1, clock)
  local now = tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1000000
  if due == nil or due < now - 1000 then due = now end
  due = due - math.log(1 - math.random()) * gap_ms
  if due <= now then return 0 end
  return math.floor(due - now)
end
"""


def paced(script: str, rate: float, threads: int = WRK_THREADS) -> str:
    """The wrk script offering about `rate` requests/s in all, Poisson-spaced, so
    latency is measured below saturation instead of as queueing time."""
    return script + PACED % {"gap_ms": threads * 1000.0 / rate}


def lua_rotating_get(requests: list[tuple[str, str]]) -> str:
    """A wrk script cycling through (path, bearer token) pairs."""
    listed = ",".join(f'{{"{path}", "{token}"}}' for path, token in requests)
    return f"""
local requests = {{{listed}}}
local i = math.random(#requests)
request = function()
  i = i % #requests + 1
  local r = requests[i]
  return wrk.format("GET", r[1], {{["Authorization"] = "Bearer " .. r[2]}})
end
"""
