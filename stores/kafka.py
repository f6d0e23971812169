"""Kafka producer configuration and an asyncio publisher whose delivery callers await.

While the broker is unreachable a write must not hang: the publisher waits at most
`ack_wait` seconds for the acknowledgement (acks=all), then answers "outcome unknown"
(`DeliveryPending`, a 503) and opens a short circuit: for `cooldown` seconds every
publish fails at once, without producing, then the next ones probe the broker again.
librdkafka keeps its own, longer delivery timeout, so a message it already took is
delivered or reported failed as a whole; `DeliveryPending.when_settled` runs a
callback once that final answer is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from domain.errors import Unavailable
from observability import tracing
from schemas.envelope import Envelope, encode, topic_of

log = logging.getLogger("stores.kafka")
T = TypeVar("T")

ACK_WAIT_SECONDS = 1.5  # longest a request waits for the broker's acknowledgement
COOLDOWN_SECONDS = 1.0  # after a failure, publishes fail fast this long, then probe
# While messages are in flight the event loop polls the producer this often (its
# delivery answers are served by those polls); with nothing in flight it does not poll.
POLL_SECONDS = 0.001
# librdkafka's own limits for the API's producer: a taken message settles within
# DELIVERY_TIMEOUT_MS (well after ACK_WAIT_SECONDS); reconnects are retried at least
# every second, so a returning broker is found quickly.
API_PRODUCER = {"delivery.timeout.ms": 10000, "reconnect.backoff.max.ms": 1000}
# Delivery failures that say the broker cannot be reached (they open the circuit).
BROKER_UNREACHABLE = {
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
}


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """Idempotent, acks=all: a retried send never duplicates or reorders within a partition.
    Concurrent requests' events wait up to `linger.ms` to share one produce request: the
    broker's CPU per event falls with the batch size, for a few ms of latency."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
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


# A delivery answer on its way to the event loop that waits for it.


class DeliveryPending(Unavailable):
    """The broker did not acknowledge in time: the event may still be delivered.

    `outcome` resolves when librdkafka settles the message (None: delivered, or the
    `Unavailable` it failed with). A caller may attach `answer`, what it would have
    answered on success, for whoever completes the request later."""

    def __init__(self, outcome: asyncio.Future[None], waited: float) -> None:
        super().__init__(
            "the event log did not acknowledge in time; the outcome is unknown, retry",
            {"outcome": "unknown", "waited_seconds": waited},
        )
        self.outcome = outcome
        self.answer: Any = None

    def when_settled(
        self,
        delivered: Callable[[], Awaitable[Any]] | None = None,
        lost: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        """Runs `delivered` or `lost` in the background once the final answer is known."""

        async def settle() -> None:
            try:
                await self.outcome
            except Unavailable:
                if lost is not None:
                    await lost()
            else:
                if delivered is not None:
                    await delivered()

        _background(settle())


_TASKS: set[asyncio.Task[Any]] = set()


async def run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Awaits `coro` in a task of its own that a cancelled caller (a client that went
    away mid-request) does not cancel: a publish and the follow-up of its outcome
    (undo, mark, store an answer) always run to the end."""
    task = asyncio.get_running_loop().create_task(coro)
    _TASKS.add(task)
    task.add_done_callback(_forget)
    return await asyncio.shield(task)


def _forget(task: asyncio.Task[Any]) -> None:
    _TASKS.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: its caller may be gone


def _background(coro: Awaitable[None]) -> None:
    async def logged() -> None:
        try:
            await coro
        except Exception:
            log.exception("follow-up of a pending delivery failed")

    task = asyncio.get_running_loop().create_task(logged())
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


class EventPublisher:
    """Publishes envelopes; `publish` returns once the broker has acknowledged (acks=all).

    Raises `Unavailable` when the event was not taken (the broker is known to be down,
    or the local queue is full) or its delivery failed, and `DeliveryPending` when the
    acknowledgement did not come within `ack_wait` seconds (None: wait for librdkafka's
    own answer)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        ack_wait: float | None = ACK_WAIT_SECONDS,
        cooldown: float = COOLDOWN_SECONDS,
        **overrides: Any,
    ) -> None:
        self._config = producer_config(bootstrap, **{**API_PRODUCER, **overrides})
        self._config["error_cb"] = self._on_error
        self._producer = Producer(self._config)
        self._ack_wait = ack_wait
        self._cooldown = cooldown
        self._down_until = 0.0
        self._down_reason = ""
        self._last_ack = 0.0
        self._fatal: KafkaError | None = None
        self._retired: list[Producer] = []
        # The delivery answers are served by polls on the event loop itself, every
        # POLL_SECONDS while anything is in flight: a poll answers every message
        # acknowledged since the last one, with no thread to hand them over (a poll
        # thread cost a GIL hand-off and a loop wake-up per poll).
        self._polling: set[asyncio.AbstractEventLoop] = set()

    def _poll_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop not in self._polling:
            self._polling.add(loop)
            loop.call_later(POLL_SECONDS, self._poll, loop)

    def _poll(self, loop: asyncio.AbstractEventLoop) -> None:
        self._producer.poll(0)
        for old in list(self._retired):
            old.poll(0)
            if len(old) == 0:  # every message it took has its final answer
                self._retired.remove(old)
        # len() counts messages queued, in flight, and answers not yet served.
        if len(self._producer) or self._retired:
            loop.call_later(POLL_SECONDS, self._poll, loop)
        else:
            self._polling.discard(loop)

    @property
    def linger_ms(self) -> int:
        """How long an event waits for others to share its produce request."""
        return int(self._config["linger.ms"])

    @property
    def polling(self) -> bool:
        """Whether some event loop still polls for delivery answers."""
        return bool(self._polling)

    def _on_error(self, err: KafkaError) -> None:
        # Called during a poll. Connection errors are librdkafka's to retry; only
        # a fatal error (the idempotent producer cannot go on) needs a new producer.
        if err.fatal():
            log.error("kafka producer fatal error: %s", err.str())
            self._fatal = err
        else:
            log.debug("kafka producer: %s", err.str())

    @property
    def down_reason(self) -> str | None:
        """Why publishes fail fast right now, or None when they are attempted."""
        return self._down_reason if time.monotonic() < self._down_until else None

    def _trip(self, reason: str) -> None:
        if self.down_reason is None:
            log.warning(
                "event log unavailable (%s); failing fast for %.1fs", reason, self._cooldown
            )
        self._down_until = time.monotonic() + self._cooldown
        self._down_reason = reason

    def _renew_if_fatal(self) -> None:
        if self._fatal is None:
            return
        old, self._producer, self._fatal = self._producer, Producer(self._config), None
        log.warning("replaced the kafka producer after a fatal error")
        # Still polled: its messages get the answers librdkafka gives them, none invented.
        self._retired.append(old)

    async def publish(self, event: Envelope) -> None:
        await self.publish_raw(topic_of(event).name, event.key, encode(event))

    async def publish_raw(self, topic: str, key: str, value: bytes) -> None:
        reason = self.down_reason
        if reason is not None:
            raise Unavailable("the event log is unavailable, retry shortly", {"event_log": reason})
        self._renew_if_fatal()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if _loop_of_this_thread() is loop:
                self._settle(done, err)
            else:  # served by another loop's poll or by close() on another thread
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits
                    loop.call_soon_threadsafe(self._settle, done, err)

        started = time.monotonic()
        try:
            self._producer.produce(
                topic,
                value=value,
                key=key.encode(),
                headers=tracing.current_headers() or None,
                on_delivery=on_delivery,
            )
        except BufferError:
            self._trip("local queue full")
            raise Unavailable("event log is busy, retry", {"retry": True}) from None
        except KafkaException as exc:  # refused locally (a fatal producer, a bad message)
            if exc.args and isinstance(exc.args[0], KafkaError) and exc.args[0].fatal():
                self._fatal = exc.args[0]
            raise Unavailable("event log refused the write, retry", {"retry": True}) from None
        self._poll_soon(loop)
        if not await _settled_within(done, self._ack_wait):
            done.add_done_callback(_observed)
            # Only a broker that acknowledged nothing since this message was taken is
            # treated as down; a slow acknowledgement under load does not open the circuit.
            if self._last_ack < started:
                self._trip(f"no acknowledgement within {self._ack_wait}s")
            raise DeliveryPending(done, self._ack_wait or 0.0)
        done.result()  # raises the delivery's failure

    def _settle(self, done: asyncio.Future[None], err: KafkaError | None) -> None:
        if err is None:
            self._last_ack = time.monotonic()
            self._down_until = 0.0  # a delivery proves the broker is back
        elif err.code() in BROKER_UNREACHABLE or err.retriable():
            self._trip(err.str())  # not for a failure of one message (e.g. its size)
        if done.done():
            return
        if err is None:
            done.set_result(None)
        else:
            done.set_exception(Unavailable(f"event log rejected the write: {err.str()}"))

    def ping(self, timeout: float = 2.0) -> None:
        reason = self.down_reason
        if reason is not None:
            raise Unavailable(f"event log unavailable: {reason}")
        self._producer.list_topics(timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)  # serves the last answers, here


def _loop_of_this_thread() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _settled_within(done: asyncio.Future[None], seconds: float | None) -> bool:
    """Wait until `done` is settled or `seconds` have passed (None: no limit), without
    cancelling it when the wait ends or the caller is cancelled. One timer and one
    callback: cheaper per vote than `wait_for` around `shield`."""
    if seconds is None:
        await asyncio.shield(done)
        return True
    if done.done():
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(seconds, wake, None)
    done.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        done.remove_done_callback(wake)
    return done.done()


def _observed(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: no "exception was never retrieved" warning
