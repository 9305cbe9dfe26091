"""The large-body gate: admissions are bounded, a long wait is a clean 503."""

from __future__ import annotations

import asyncio

import pytest

from smartoken.admission import BodyGate, default_slots
from smartoken.errors import LargeBodiesBusy


def test_slots_bound_and_a_long_wait_is_refused() -> None:
    async def main() -> None:
        gate = BodyGate(slots=2, wait=0.1)
        await gate.acquire()
        await gate.acquire()
        with pytest.raises(LargeBodiesBusy) as exc:
            await gate.acquire()
        assert exc.value.status == 503 and exc.value.headers["retry-after"]
        assert gate.waiting == 0
        waiter = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0.01)
        assert gate.waiting == 1 and not waiter.done()
        gate.release()
        await asyncio.wait_for(waiter, 1)

    asyncio.run(main())
    assert default_slots() >= 1
