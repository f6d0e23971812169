"""Kafka producer configuration and an asyncio publisher whose delivery callers await."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from domain.errors import Unavailable
from schemas.envelope import Envelope, encode, topic_of


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """Idempotent, acks=all: a retried send never duplicates or reorders within a partition."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 1,
        "compression.type": "lz4",
        "delivery.timeout.ms": 10000,
        "request.timeout.ms": 5000,
    }
    config.update(overrides)
    return config


def consumer_config(bootstrap: str, group_id: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    config.update(overrides)
    return config


class EventPublisher:
    """Publishes envelopes; `publish` returns once the broker has acknowledged (acks=all)."""

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self._producer = Producer(producer_config(bootstrap, **overrides))
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.05)

    async def publish(self, event: Envelope) -> None:
        await self.publish_raw(topic_of(event).name, event.key, encode(event))

    async def publish_raw(self, topic: str, key: str, value: bytes) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, done, err)

        try:
            self._producer.produce(topic, value=value, key=key.encode(), on_delivery=on_delivery)
        except BufferError:
            raise Unavailable("event log is busy, retry", {"retry": True}) from None
        await done

    def ping(self, timeout: float = 2.0) -> None:
        self._producer.list_topics(timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
        self._closing.set()
        self._poller.join(timeout=1)


def _settle(done: asyncio.Future[None], err: KafkaError | None) -> None:
    if done.done():
        return
    if err is None:
        done.set_result(None)
    else:
        done.set_exception(Unavailable(f"event log rejected the write: {err.str()}"))
