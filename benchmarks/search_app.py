"""The platform's API plus the search baselines, in one Sanic app, so a benchmark
compares `GET /search` with ILIKE and Postgres FTS behind the same HTTP stack.

    python -m benchmarks.search_app --port 8110 --workers 2
"""

from __future__ import annotations

import argparse

from sanic import Sanic
from sanic.worker.loader import AppLoader

from api.app import create_app as create_platform_app
from benchmarks import search_baseline
from stores.pg import create_pool
from stores.settings import get_settings


def create_app() -> Sanic:
    app = create_platform_app("agora_search_bench")
    app.blueprint(search_baseline.bp)

    @app.before_server_start
    async def connect(app: Sanic) -> None:
        settings = get_settings()
        app.ctx.search_db = await create_pool(settings.dsn(search_baseline.BASELINE_DB))

    @app.after_server_stop
    async def close(app: Sanic) -> None:
        await app.ctx.search_db.close()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8110)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    loader = AppLoader(factory=create_app)
    app = loader.load()
    app.prepare(host="127.0.0.1", port=args.port, workers=args.workers, motd=False)
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
