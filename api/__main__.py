"""Run the API: `python -m api --port 8000 --workers 2`."""

from __future__ import annotations

import argparse

import sanic.mixins.startup
from sanic import Sanic
from sanic.worker.loader import AppLoader

from api.app import create_app
from api.lifeline import sync_manager_that_dies_with_parent
from observability.metrics import cleanup_multiprocess, enable_multiprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    single = args.workers == 1
    # Workers share one metrics directory: /metrics is one view across them. A single
    # worker serves in this process and keeps its metrics in memory.
    metrics_dir = None if single else enable_multiprocess()
    loader = AppLoader(factory=create_app)
    app = loader.load()
    app.prepare(
        host=args.host,
        port=args.port,
        workers=args.workers,
        single_process=single,
        motd=False,
    )
    try:
        if single:
            # One worker runs in this process: no worker manager, so no child that a
            # stop signal during its start-up handshake could leave behind.
            Sanic.serve_single(primary=app)
        else:
            # Sanic's shared-state manager process, like its workers (`create_app`),
            # ends with this process however it ends.
            sanic.mixins.startup.Manager = sync_manager_that_dies_with_parent
            Sanic.serve(primary=app, app_loader=loader)
    finally:
        if metrics_dir is not None:
            cleanup_multiprocess(metrics_dir)


if __name__ == "__main__":
    main()
