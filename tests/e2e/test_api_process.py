"""The API's own process: a stop signal that comes the moment it is ready ends it at
once and leaves no process behind (a single worker serves in the main process)."""

from __future__ import annotations

import signal

from benchmarks.cpu import children_of
from tests.processes import start_api


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
