"""The API's own process: a stop signal that comes the moment it is ready ends it at
once and leaves no process behind (a single worker serves in the main process), and
the children of a killed multi-worker API end with it."""

from __future__ import annotations

import contextlib
import os
import signal

import httpx

from benchmarks.cpu import children_of, running
from tests.processes import start_api, wait_for


def test_a_single_worker_api_stopped_as_it_becomes_ready_leaves_nothing(platform):
    api, _base = start_api(platform.log_dir, workers=1)
    try:
        # Sanic's worker manager would add a manager process and a worker; a stop signal
        # during their start-up handshake kept the main process waiting 30 s for it.
        assert children_of().get(api.pid, []) == []
        assert api.proc is not None
        api.proc.send_signal(signal.SIGINT)
        assert api.proc.wait(10) == 0
    finally:
        api.stop()


def test_workers_stop_serving_when_the_main_process_is_killed(platform):
    """A SIGKILL of a multi-worker API's main process (no chance to stop its children)
    must not leave workers answering on its port, nor any of its children running."""
    api, base = start_api(platform.log_dir, workers=2)
    children = children_of().get(api.pid, [])
    try:
        assert len(children) >= 3  # two workers, Sanic's manager and more
        api.kill9()

        def refused() -> bool:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
            except httpx.ConnectError:
                return True
            except httpx.HTTPError:
                return False
            return False

        wait_for(refused, timeout=30, what="the orphaned workers to stop serving")
        wait_for(
            lambda: not any(running(pid) for pid in children),
            timeout=30,
            what="every child of the killed API to exit",
        )
    finally:
        api.stop()
        for pid in children:  # if the test failed: leave nothing of the API behind
            with contextlib.suppress(OSError):
                if running(pid) and b"multiprocessing" in cmdline(pid):
                    os.kill(pid, signal.SIGTERM)


def cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()
