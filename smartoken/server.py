"""Running the ASGI app on uvicorn (uvloop + httptools), exiting 0 after a graceful stop."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import uvicorn


class GracefulServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its graceful shutdown, so the process dies "killed by
    SIGTERM". A gateway that drained and flushed its ledger has exited cleanly: status 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def run(app: Any, **options: Any) -> None:
    config = uvicorn.Config(app, **options)
    GracefulServer(config).run()
