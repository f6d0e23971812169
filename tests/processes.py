"""Start, kill and await the platform's own processes from tests (readiness, not sleeps)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from api.lifeline import signal_on_parent_exit

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_for(
    check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    def __init__(
        self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.args = args
        self.env = env or {}
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, *self.args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            # SIGTERM when the test runner dies, however it dies: a killed run must
            # not leave platform processes behind.
            preexec_fn=signal_on_parent_exit,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 15) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_api(
    log_dir: Path, workers: int = 1, env: dict[str, str] | None = None
) -> tuple[Process, str]:
    port = free_port()
    proc = Process(
        f"api-{port}", ["-m", "api", "--port", str(port), "--workers", str(workers)], log_dir, env
    ).start()
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if not proc.alive():
            raise AssertionError(f"API exited:\n{proc.log_tail()}")
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        # a busy machine can take minutes to import and fork the workers
        wait_for(ready, timeout=300, what="API /readyz")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{proc.log_tail()}") from None
    return proc, base


def start_dataflow(name: str, log_dir: Path, workers: int = 1) -> Process:
    return Process(
        f"dataflow-{name}", ["-m", "dataflows", "run", name, "-w", str(workers)], log_dir
    ).start()


def start_ws(log_dir: Path) -> tuple[Process, str]:
    """A WebSocket push server on a free port; returns it and its ws:// base URL."""
    port = free_port()
    proc = Process(f"ws-{port}", ["-m", "ws", "--port", str(port)], log_dir).start()

    def ready() -> bool:
        if not proc.alive():
            raise AssertionError(f"ws server exited:\n{proc.log_tail()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout=30, what="ws /healthz")
    return proc, f"ws://127.0.0.1:{port}"
