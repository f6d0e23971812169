from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from stores.coalesce import Coalescer


class Recorder:
    """Answers each question with its double, records the batches, and can be held."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_next = False

    async def answer_all(self, questions: list[int]) -> list[int]:
        self.batches.append(list(questions))
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("redis went away")
        return [q * 2 for q in questions]


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(50):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def test_questions_asked_in_one_turn_go_out_as_one_batch() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.answer_all)
    answers = await asyncio.gather(*(coalescer.call(q) for q in range(5)))
    assert answers == [0, 2, 4, 6, 8]
    assert recorder.batches == [[0, 1, 2, 3, 4]]


async def test_a_lone_question_is_answered_at_once() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.answer_all)
    assert await coalescer.call(21) == 42
    assert await coalescer.call(4) == 8
    assert recorder.batches == [[21], [4]]


async def test_questions_asked_while_a_batch_is_out_wait_and_go_together() -> None:
    recorder = Recorder()
    recorder.release.clear()
    coalescer = Coalescer(recorder.answer_all)
    first = asyncio.ensure_future(coalescer.call(1))
    await until(lambda: recorder.batches == [[1]])
    later = [asyncio.ensure_future(coalescer.call(q)) for q in (2, 3, 4)]
    await asyncio.sleep(0)
    assert recorder.batches == [[1]]  # one batch out at a time
    recorder.release.set()
    assert await first == 2
    assert await asyncio.gather(*later) == [4, 6, 8]
    assert recorder.batches == [[1], [2, 3, 4]]


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_works() -> None:
    recorder = Recorder()
    recorder.fail_next = True
    coalescer = Coalescer(recorder.answer_all)
    results = await asyncio.gather(*(coalescer.call(q) for q in (1, 2)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await coalescer.call(3) == 6


async def test_a_caller_that_gives_up_leaves_the_others_answered() -> None:
    recorder = Recorder()
    recorder.release.clear()
    coalescer = Coalescer(recorder.answer_all)
    out = asyncio.ensure_future(coalescer.call(1))
    await until(lambda: recorder.batches == [[1]])
    gone = asyncio.ensure_future(coalescer.call(2))
    stays = asyncio.ensure_future(coalescer.call(3))
    await asyncio.sleep(0)
    gone.cancel()
    recorder.release.set()
    assert await out == 2
    assert await stays == 6
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert recorder.batches == [[1], [3]]  # the abandoned question was never sent


async def test_batches_are_capped() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.answer_all, max_batch=2)
    assert await asyncio.gather(*(coalescer.call(q) for q in range(5))) == [0, 2, 4, 6, 8]
    assert recorder.batches == [[0, 1], [2, 3], [4]]


async def test_a_wrong_number_of_answers_is_an_error_not_a_mismatch() -> None:
    async def short(questions: list[int]) -> list[int]:
        return questions[:-1]

    coalescer = Coalescer(short)
    results = await asyncio.gather(*(coalescer.call(q) for q in (1, 2)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_an_answer_that_is_an_error_fails_only_its_caller() -> None:
    async def picky(questions: list[int]) -> list[int | Exception]:
        return [ValueError(f"no {q}") if q < 0 else q for q in questions]

    coalescer = Coalescer(picky)
    results = await asyncio.gather(*(coalescer.call(q) for q in (1, -2, 3)), return_exceptions=True)
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ValueError) and str(results[1]) == "no -2"
