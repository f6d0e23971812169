"""Run the WebSocket push server: `python -m ws --port 8001`."""

from __future__ import annotations

import argparse
import asyncio
import signal

from observability import logs
from stores.settings import get_settings
from ws.server import Options, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--queue", type=int, default=256, help="pending pushes per socket")
    parser.add_argument("--ping-interval", type=float, default=20.0)
    parser.add_argument("--ping-timeout", type=float, default=20.0)
    args = parser.parse_args()
    logs.configure("ws")
    options = Options(args.host, args.port, args.queue, args.ping_interval, args.ping_timeout)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(get_settings(), options, stop)

    asyncio.run(runner())


if __name__ == "__main__":
    main()
