"""Running the ASGI app on uvicorn (uvloop + httptools), exiting 0 after a graceful stop.

SIGTERM (or SIGINT) starts the drain:
1. ``/readyz`` answers 503 at once (``AppState.ready`` is cleared), so load balancers stop
   sending; for ``drain_delay`` seconds (config ``shutdown_delay_s``, default 0) the gateway
   keeps accepting, for balancers that only notice on their next health check;
2. then the listening socket closes, idle keep-alive connections close, and in-flight
   requests and streams run to their end for up to ``timeout_graceful_shutdown`` seconds
   (``shutdown_grace_s``, default 30), after which the rest are cancelled (a cancelled stream
   is billed for what it delivered);
3. the lifespan closes: the ledger writer flushes every usage record, and the process exits 0.
A second SIGINT forces an immediate stop.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Generator
from types import FrameType
from typing import Any

import uvicorn

MAX_WRAPPERS = 16


def mark_unready(app: Any) -> bool:
    """Clear ``ready`` on the gateway state behind ``app`` (however many ASGI layers wrap it)."""
    for _ in range(MAX_WRAPPERS):
        state = getattr(getattr(app, "state", None), "smartoken", None)
        if state is not None:
            state.ready = False
            return True
        app = getattr(app, "app", None)
        if app is None:
            return False
    return False


class GracefulServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its graceful shutdown, so the process dies "killed by
    SIGTERM". A gateway that drained and flushed its ledger has exited cleanly: status 0."""

    def __init__(self, config: uvicorn.Config, drain_delay: float = 0.0) -> None:
        super().__init__(config)
        self.drain_delay = drain_delay
        self.draining = False
        self._exit_at: float | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.draining:
            self.draining = True
            if self.config.loaded:
                mark_unready(self.config.loaded_app)
            if self.drain_delay > 0:
                self._captured_signals.append(sig)
                self._exit_at = time.monotonic() + self.drain_delay
                return
        if self._exit_at is not None and sig != signal.SIGINT:
            self._captured_signals.append(sig)
            return  # already draining on schedule
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self.should_exit = True
        return await super().on_tick(counter)


def run(app: Any, drain_delay: float = 0.0, **options: Any) -> None:
    config = uvicorn.Config(app, **options)
    GracefulServer(config, drain_delay).run()
