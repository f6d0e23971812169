"""The platform's API plus the Lemmy-style baseline routes, in one Sanic app, so a
benchmark compares read and write paths behind the same HTTP stack.

    python -m benchmarks.bench_app --port 8100 --workers 2
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from types import ModuleType

from sanic import HTTPResponse, Request, Sanic, empty
from sanic.worker.loader import AppLoader

from api.app import create_app as create_platform_app
from benchmarks import lemmy_baseline
from stores.pg import create_pool
from stores.settings import get_settings

NOOP_PATH = "/bench/noop"


def with_baseline(name: str, baseline: ModuleType, pool_attr: str) -> Sanic:
    """The platform's app plus a baseline module's routes (`bp`) and a pool on its
    database (`BASELINE_DB`) as `app.ctx.<pool_attr>`, with the platform's pool
    settings (no reset round trip per release)."""
    app = create_platform_app(name)
    app.blueprint(baseline.bp)

    async def noop(request: Request) -> HTTPResponse:
        """204 at once: what a wrk script sends while it waits for its last answers."""
        return empty()

    app.add_route(noop, NOOP_PATH, methods=["GET"], name="bench_noop")

    @app.before_server_start
    async def connect(app: Sanic) -> None:
        settings = get_settings()
        setattr(app.ctx, pool_attr, await create_pool(settings.dsn(baseline.BASELINE_DB)))

    @app.after_server_stop
    async def close(app: Sanic) -> None:
        await getattr(app.ctx, pool_attr).close()

    return app


def serve(factory: Callable[[], Sanic], description: str | None, port: int) -> None:
    """Serve a module-level app factory (workers re-create the app from it)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    loader = AppLoader(factory=factory)
    app = loader.load()
    app.prepare(host="127.0.0.1", port=args.port, workers=args.workers, motd=False)
    Sanic.serve(primary=app, app_loader=loader)


def create_app() -> Sanic:
    return with_baseline("agora_bench", lemmy_baseline, "lemmy")


if __name__ == "__main__":
    serve(create_app, __doc__, 8100)
