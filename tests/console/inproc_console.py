"""An in-process gateway for browser tests: Playwright's sync API keeps an event loop running in
the test's thread, so the database helpers run in a worker thread (as ``ConsoleGateway``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tests.inproc import InProcessGateway

T = TypeVar("T")


class InprocConsole(InProcessGateway):
    def db(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(super().db, fn).result()
