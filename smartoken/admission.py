"""Admission of large request bodies: at most ``slots`` are read, parsed and sized at once.

A 30 MB prompt used to cost ~220 MB of memory and eight at once took a worker from 291 MB to
2 GB while slowing every other request 10×. A request whose body passes ``LARGE`` bytes must
hold an admission while it is read, parsed and sized (``api/bodies.py``); the others wait with
their bodies unread in the socket (uvicorn stops reading a connection whose body is not being
consumed), so memory stays bounded by ``slots`` large bodies however many arrive, and the
cores stay free for the small requests. One that waits longer than ``wait`` seconds gets a
503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import os

from smartoken.errors import LargeBodiesBusy

LARGE = 1024 * 1024  # bytes; a body this big needs an admission
WAIT = 60.0  # seconds a large body may wait for one


def default_slots() -> int:
    """One large body per two cores: counting one uses two threads."""
    return max(1, (os.cpu_count() or 2) // 2)


class BodyGate:
    """The admissions of one process (one per ``AppState``)."""

    def __init__(self, slots: int | None = None, wait: float = WAIT) -> None:
        self.slots = slots or default_slots()
        self.wait = wait
        self.waiting = 0
        self._sem: asyncio.Semaphore | None = None  # made on the serving loop

    async def acquire(self) -> None:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.slots)
        self.waiting += 1
        try:
            await asyncio.wait_for(self._sem.acquire(), self.wait)
        except TimeoutError:
            raise LargeBodiesBusy(
                f"The gateway is busy with other large requests (over {LARGE} bytes); retry "
                "in a few seconds.") from None
        finally:
            self.waiting -= 1

    def release(self) -> None:
        assert self._sem is not None
        self._sem.release()
