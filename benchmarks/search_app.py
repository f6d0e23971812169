"""The platform's API plus the search baselines, in one Sanic app, so a benchmark
compares `GET /search` with ILIKE and Postgres FTS behind the same HTTP stack.

    python -m benchmarks.search_app --port 8110 --workers 2
"""

from __future__ import annotations

from sanic import Sanic

from benchmarks import search_baseline
from benchmarks.bench_app import serve, with_baseline


def create_app() -> Sanic:
    return with_baseline("agora_search_bench", search_baseline, "search_db")


if __name__ == "__main__":
    serve(create_app, __doc__, 8110)
