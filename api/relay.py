"""Outbox relay: publishes committed outbox rows to Kafka in id order, then marks them sent.

`python -m api.relay`. Each batch runs in one transaction that first takes a
transaction-scoped advisory lock, so two relays running at once take turns and
never publish out of order. A crash after publishing but before the commit leaves
the rows unsent: they are published again (consumers dedupe by event id).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

import asyncpg

from domain.errors import Unavailable
from observability import logs
from stores import outbox
from stores.kafka import EventPublisher
from stores.settings import get_settings

log = logging.getLogger("relay")

BATCH = 500


async def relay_once(
    conn: asyncpg.Connection, publisher: EventPublisher, batch: int = BATCH
) -> int:
    """Publish one batch; returns how many rows were sent."""
    async with conn.transaction():
        await outbox.lock_for_relay(conn)
        rows = await outbox.unsent(conn, batch)
        if not rows:
            return 0
        # Send in order; the idempotent producer keeps per-partition order across retries.
        await asyncio.gather(*(publisher.publish_raw(r.topic, r.key, r.value) for r in rows))
        await outbox.mark_sent(conn, [r.id for r in rows])
        return len(rows)


async def run(poll_interval: float, stop: asyncio.Event) -> None:
    settings = get_settings()
    # The relay waits for each delivery's final answer: a batch is marked sent only
    # when the broker has it, and is retried (not duplicated) while the log is down.
    publisher = EventPublisher(settings.kafka_bootstrap, ack_wait=None)
    conn = await asyncpg.connect(settings.dsn(settings.identity_db))
    wake = asyncio.Event()
    await outbox.listen(conn, lambda *_: wake.set())
    log.info("outbox relay running")
    try:
        while not stop.is_set():
            try:
                sent = await relay_once(conn, publisher)
            except Unavailable as exc:
                log.warning("event log unavailable, retrying: %s", exc.message)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass
                continue
            if sent:
                log.debug("published %d outbox rows", sent)
                continue
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout=poll_interval)
            except TimeoutError:
                pass
    finally:
        await conn.close()
        publisher.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--poll-interval", type=float, default=0.2)
    args = parser.parse_args()
    logs.configure("relay")

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(args.poll_interval, stop)

    asyncio.run(runner())


if __name__ == "__main__":
    main()
