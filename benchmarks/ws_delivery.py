"""Mention -> WebSocket delivery latency, and how many sockets one push server holds.

    python -m benchmarks.ws_delivery [--base URL] [--clients 10000] [--mentions 200]

Needs the platform running (`bash deploy/up.sh`: API, content and mentions
dataflows). Starts its own push server process, measures its resident memory, opens
`--clients` idle sockets to it (minted tokens: distinct users), then has one user
mention another `--mentions` times, one comment at a time, while the second user
listens on a socket of the same server: the latency is from just before the POST
(the 202 includes the awaited Kafka write) to the notification arriving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.common import mint_tokens, percentile, seed_posts, start_process, summary
from stores.settings import get_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(port: int) -> subprocess.Popen[bytes]:
    return start_process(["-m", "ws", "--port", str(port)], f"http://127.0.0.1:{port}/healthz")


async def open_idle(url: str, tokens: list[str], in_flight: int = 200) -> list[ClientConnection]:
    gate = asyncio.Semaphore(in_flight)

    async def one(token: str) -> ClientConnection:
        async with gate:
            conn = await connect(
                f"{url}?token={token}", compression=None, ping_interval=None, open_timeout=60
            )
            await conn.recv()  # the unread count: attached and subscribed
            return conn

    return list(await asyncio.gather(*(one(t) for t in tokens)))


@dataclass(frozen=True)
class Cast:
    """A post to comment on, its author's headers, and the user they mention."""

    post_id: str
    headers: dict[str, str]
    listener: str
    listener_token: str


def cast(base: str) -> Cast:
    seed = seed_posts(base, 1, prefix="wsbench")
    http = httpx.Client(base_url=f"{base}/api/v1", timeout=30)
    name = f"listener{int(time.time() * 1000) % 10**8}"
    password = "bench-password"
    http.post(
        "/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": password},
    ).raise_for_status()
    login = http.post("/auth/login", json={"login": name, "password": password}).json()
    return Cast(seed.post_ids[0], seed.headers, name, login["access_token"])


async def measure_latency(
    base: str, url: str, who: Cast, mentions: int
) -> tuple[list[float], list[float]]:
    http = httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30)
    listener = await connect(f"{url}?token={who.listener_token}", compression=None)
    await listener.recv()
    end_to_end: list[float] = []
    after_accept: list[float] = []
    try:
        for i in range(mentions):
            started = time.perf_counter()
            r = await http.post(
                f"/posts/{who.post_id}/comments",
                json={"body": f"ping {i} u/{who.listener}"},
                headers=who.headers,
            )
            accepted = time.perf_counter()
            r.raise_for_status()
            target = r.json()["comment_id"]
            while True:
                message: dict[str, Any] = orjson.loads(await asyncio.wait_for(listener.recv(), 10))
                note = message.get("notification") or {}
                if note.get("target_id") == target:
                    break
            arrived = time.perf_counter()
            end_to_end.append(arrived - started)
            after_accept.append(arrived - accepted)
    finally:
        await listener.close()
        await http.aclose()
    return end_to_end, after_accept


async def sockets_held(port: int) -> int:
    async with httpx.AsyncClient() as http:
        return int((await http.get(f"http://127.0.0.1:{port}/healthz")).json()["connections"])


async def run(args: argparse.Namespace, who: Cast, tokens: list[str]) -> dict[str, Any]:
    port = free_port()
    server = start_server(port)
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        idle_rss = rss_mib(server.pid)
        quiet = await measure_latency(args.base, url, who, args.mentions // 4)
        started = time.perf_counter()
        clients = await open_idle(url, tokens)
        opened = time.perf_counter() - started
        held = await sockets_held(port)
        loaded_rss = rss_mib(server.pid)
        loaded = await measure_latency(args.base, url, who, args.mentions)
        still = await sockets_held(port)
        await asyncio.gather(*(c.close() for c in clients))
    finally:
        server.terminate()
        server.wait(30)
    per_socket_kib = (loaded_rss - idle_rss) * 1024 / max(1, held)
    print(f"push server: {held} sockets opened in {opened:.1f}s, {still} still open after")
    print(
        f"  resident memory: {idle_rss:.0f} MiB empty, {loaded_rss:.0f} MiB with {held} sockets"
        f" ({per_socket_kib:.1f} KiB each)"
    )
    print(f"  mention -> socket, no other sockets  : {summary(quiet[0])}")
    print(f"  mention -> socket, {held} sockets open: {summary(loaded[0])}")
    print(f"    of which after the 202             : {summary(loaded[1])}")
    return {
        "sockets": held,
        "sockets_after": still,
        "rss_empty_mib": round(idle_rss),
        "rss_loaded_mib": round(loaded_rss),
        "kib_per_socket": round(per_socket_kib, 1),
        "latency_p50_ms": round(percentile(loaded[0], 50) * 1000, 1),
        "latency_p99_ms": round(percentile(loaded[0], 99) * 1000, 1),
        "quiet_latency_p99_ms": round(percentile(quiet[0], 99) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--mentions", type=int, default=200)
    args = parser.parse_args()
    who = cast(args.base)
    tokens = mint_tokens(get_settings(), args.clients)
    print(json.dumps(asyncio.run(run(args, who, tokens))))


if __name__ == "__main__":
    main()
