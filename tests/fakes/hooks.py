"""A local stand-in for where webhook alerts go: a receiver over real HTTP that verifies each
signature (mail goes to tests/mailbox.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from smartoken.alerts import signing
from tests.harness import held_port


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    at: float
    valid: bool

    @property
    def event(self) -> dict[str, Any]:
        return dict(orjson.loads(self.body))


@dataclass
class WebhookReceiver:
    """``status``: what to answer; ``delay``: seconds before answering; ``secret``: the
    signing secret to verify with (set once the gateway showed it)."""

    status: int = 200
    delay: float = 0.0
    secret: str = ""
    received: list[Delivery] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/alerts?token=path-secret-123"

    def start(self) -> WebhookReceiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size)
                headers = {k.lower(): v for k, v in self.headers.items()}
                valid = bool(outer.secret) and signing.verify(
                    outer.secret, body, headers.get(signing.HEADER.lower(), ""))
                if outer.delay:
                    time.sleep(outer.delay)
                outer.received.append(Delivery(headers, body, time.time(), valid))
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = self.port or held_port(self)  # kept while it is stopped and started
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait(self, n: int, timeout: float = 10.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.received)
