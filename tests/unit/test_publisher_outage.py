"""The publisher against a broker that is not there (no server needed): bounded waits,
the fail-fast circuit and its probe, and the follow-up of a pending delivery."""

from __future__ import annotations

import asyncio
import time

import pytest

from domain.errors import Unavailable
from stores.kafka import DeliveryPending, EventPublisher

NOWHERE = "127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture
def publisher():
    p = EventPublisher(NOWHERE, ack_wait=0.3, cooldown=0.5, **{"delivery.timeout.ms": 1500})
    yield p
    p.close(timeout=5)


async def test_a_write_waits_at_most_ack_wait_then_fails_fast_then_probes(publisher):
    started = time.monotonic()
    with pytest.raises(DeliveryPending) as pending:
        await publisher.publish_raw("t", "k", b"v")
    assert 0.25 < time.monotonic() - started < 1.0
    assert pending.value.status == 503 and pending.value.details["outcome"] == "unknown"
    assert publisher.down_reason is not None

    # the circuit is open: no produce, an immediate definite failure
    started = time.monotonic()
    with pytest.raises(Unavailable) as failed:
        await publisher.publish_raw("t", "k", b"v")
    assert not isinstance(failed.value, DeliveryPending)
    assert time.monotonic() - started < 0.05
    with pytest.raises(Unavailable):
        publisher.ping()

    # after the cooldown the next write probes the broker again
    await asyncio.sleep(0.6)
    assert publisher.down_reason is None
    with pytest.raises(DeliveryPending):
        await publisher.publish_raw("t", "k", b"v")


async def test_a_pending_delivery_is_followed_up_when_lost(publisher):
    with pytest.raises(DeliveryPending) as pending:
        await publisher.publish_raw("t", "k", b"v")
    settled: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def delivered() -> None:
        settled.set_result("delivered")

    async def lost() -> None:
        settled.set_result("lost")

    pending.value.when_settled(delivered=delivered, lost=lost)
    # librdkafka's own delivery timeout (1.5 s here) gives the final answer
    assert await asyncio.wait_for(settled, timeout=10) == "lost"
