"""An in-process gateway for console tests (issue 17: the console tests run in-process).

Playwright's sync API keeps an event loop running in the test's thread, so the database
helpers run in a worker thread (as ``ConsoleGateway`` did for a process). The first-start
banner (the admin's console password) is printed to standard output while the app starts; it
is captured and served by ``log()``, as a process's output would be."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tests.inproc import InProcessGateway

T = TypeVar("T")


class InprocConsole(InProcessGateway):
    banner = ""

    def start(self, timeout: float = 90) -> InprocConsole:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            super().start(timeout)
        self.banner = out.getvalue()
        return self

    def log(self) -> str:
        return self.banner + super().log()

    def db(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(super().db, fn).result()
