"""The gateway served from inside the test process: the same app, settings and helpers as
``tests.harness.Gateway``, without starting a Python process (no interpreter start, no second
load of the tokenizer ranks: ~0.1 s instead of ~1.5 s per gateway).

``InProcessGateway`` runs ``create_app(settings)`` on uvicorn in a background thread with its
own event loop, on a loopback port, so tests keep real HTTP (streams arrive chunk by chunk, a
client that hangs up is seen as a disconnect) and the official SDKs work unchanged. Use it for
everything that does not test the process itself; keep ``Gateway`` (a real ``smartoken serve``)
for signals, SIGKILL, ``--workers``, start-up output and several replicas.

Differences from a process: the environment given as ``env`` is read by the app (settings,
scale-out options, test clock, demo pace) but ``os.environ`` is not changed; the JSON log
lines of every gateway in this process are collected by one handler (``log()`` returns the
lines written since this gateway started); ``stop()`` is a graceful drain (as SIGTERM),
``kill()`` is refused.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from pathlib import Path

import uvicorn
import yaml

from smartoken.app import create_app
from smartoken.cli.ops import ops_options
from smartoken.config import load_settings
from smartoken.logs import JsonFormatter, Redactor, secrets_of
from tests.harness import Gateway


class _Lines(logging.Handler):
    """Every log line of the gateways in this process, formatted and redacted as in production."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.buffer = io.StringIO()
        self.lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a broken record must not break the request that logged it
            return
        with self.lock_:
            self.buffer.write(line + "\n")

    def text(self) -> str:
        with self.lock_:
            return self.buffer.getvalue()


class InProcessGateway(Gateway):
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _handler: _Lines | None = None
    _log_from = 0

    def start(self, timeout: float = 90) -> InProcessGateway:
        cfg: Path | None = None
        if self.config is not None:
            cfg = self.tmp / "smartoken.yaml"
            cfg.write_text(yaml.safe_dump(self.config))
        if self.workers > 1:
            raise ValueError("several workers need a process: use tests.harness.Gateway")
        settings = load_settings(cfg, env=self.env, data_dir=str(self.data_dir),
                                 port=self.port)
        self._attach_log(secrets_of(settings))
        app = create_app(settings, env=self.env)
        # The uvicorn options of ``smartoken serve`` (grace, header limit), on asyncio.
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="on",
                                access_log=False, loop="asyncio", **ops_options(settings))
        server = self._server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        failed: list[BaseException] = []

        def serve() -> None:
            try:
                asyncio.run(server.serve())
            except BaseException as exc:  # reported by start()
                failed.append(exc)

        self._thread = threading.Thread(target=serve, name=f"gateway-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.started:
                return self
            if failed or not self._thread.is_alive():
                raise RuntimeError(f"gateway failed to start: {failed!r}\n{self.log()}")
            time.sleep(0.01)
        raise RuntimeError(f"gateway did not become ready:\n{self.log()}")

    def _attach_log(self, secrets: list[str | None]) -> None:
        root = logging.getLogger()
        handler = next((h for h in root.handlers if isinstance(h, _Lines)), None)
        if handler is None:
            handler = _Lines()
            handler.setFormatter(JsonFormatter(Redactor()))
            root.addHandler(handler)
        assert isinstance(handler.formatter, JsonFormatter)
        handler.formatter.redactor.add(*secrets)
        level = logging.getLevelName(self.log_level.upper())
        if isinstance(level, int) and (root.level == logging.NOTSET or root.level > level):
            root.setLevel(level)
        self._handler = handler
        self._log_from = len(handler.text())

    def log(self) -> str:
        return self._handler.text()[self._log_from:] if self._handler else ""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, sig: int = 0, timeout: float = 30) -> int | None:
        """A graceful stop, as SIGTERM: drain, flush the ledger, close. Returns 0."""
        if self._server is None or self._thread is None:
            return None
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(5)
        self._server = None
        return 0

    def kill(self) -> None:
        raise NotImplementedError("a SIGKILL needs a process: use tests.harness.Gateway")

