"""IdleTimer: only time spent inside a read counts; it cancels the reader, not anyone else."""

from __future__ import annotations

import asyncio

import pytest

from smartoken.providers.idle import IdleTimer


async def _read(timer: IdleTimer, seconds: float) -> str:
    timer.start_read()
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        if timer.timed_out():
            return "timeout"
        raise
    timer.end_read()
    return "data"


def test_time_between_reads_does_not_count() -> None:
    async def main() -> list[str]:
        timer = IdleTimer(0.2)
        try:
            out = [await _read(timer, 0.05)]
            await asyncio.sleep(0.5)  # the consumer is slow: not the upstream's fault
            out.append(await _read(timer, 0.05))
            return out
        finally:
            timer.close()

    assert asyncio.run(main()) == ["data", "data"]


def test_a_read_pending_longer_than_idle_times_out_and_the_task_is_not_left_cancelled() -> None:
    async def main() -> tuple[str, int, str]:
        timer = IdleTimer(0.1)
        try:
            first = await _read(timer, 5)
            task = asyncio.current_task()
            assert task is not None
            return first, task.cancelling(), await _read(timer, 0.01)
        finally:
            timer.close()

    assert asyncio.run(main()) == ("timeout", 0, "data")


def test_someone_elses_cancel_is_not_taken_for_a_timeout() -> None:
    async def main() -> None:
        timer = IdleTimer(10)
        task = asyncio.create_task(_read(timer, 5))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        timer.close()

    asyncio.run(main())
