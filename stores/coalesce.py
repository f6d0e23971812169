"""Joins concurrent lookups into one round trip.

Under load an API worker has dozens of requests in flight, and each asking Redis the
same kind of small question (a reader's votes on a page) pays the client library's
per-command work, a write and a read syscall, and Redis's own per-command overhead.
A `Coalescer` queues the questions asked while the previous batch is out (or during
the same event-loop turn) and sends them as one call: at low load a question goes out
at once, as before; under load the per-call costs are shared by the whole batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Q = TypeVar("Q")
R = TypeVar("R")

MAX_BATCH = 128


class Coalescer(Generic[Q, R]):
    """`await call(q)` answers `q` through `answer_all([..., q, ...])`, which must
    return one answer per question, in order; an answer that is an exception is raised
    to its caller alone. At most `in_flight` batches are out at once; an error of the
    whole batch is raised to every caller in it."""

    def __init__(
        self,
        answer_all: Callable[[list[Q]], Awaitable[Sequence[R | Exception]]],
        in_flight: int = 1,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._answer_all = answer_all
        self._in_flight = in_flight
        self._max_batch = max_batch
        self._queued: list[tuple[Q, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._scheduled = False

    async def call(self, question: Q) -> R:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[R] = loop.create_future()
        self._queued.append((question, answer))
        self._schedule(loop)
        return await answer

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and len(self._running) < self._in_flight:
            self._scheduled = True
            loop.call_soon(self._send)

    def _send(self) -> None:
        self._scheduled = False
        # Questions whose askers gave up (a client went away) are not sent.
        self._queued = [(q, f) for q, f in self._queued if not f.done()]
        if not self._queued or len(self._running) >= self._in_flight:
            return
        batch, self._queued = self._queued[: self._max_batch], self._queued[self._max_batch :]
        task = asyncio.get_running_loop().create_task(self._answer(batch))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._queued:
            self._schedule(task.get_loop())

    async def _answer(self, batch: list[tuple[Q, asyncio.Future[R]]]) -> None:
        try:
            answers = await self._answer_all([q for q, _ in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers to {len(batch)} questions")
        except asyncio.CancelledError:
            for _, f in batch:
                f.cancel()
            raise
        except Exception as exc:  # every asker sees the failure, none waits forever
            for _, f in batch:
                if not f.done():
                    f.set_exception(exc)
            return
        for (_, f), a in zip(batch, answers, strict=True):
            if f.done():
                continue
            if isinstance(a, Exception):
                f.set_exception(a)
            else:
                f.set_result(a)
