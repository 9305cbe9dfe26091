"""A hostile upstream (issue 12 items 6 and 7): it redirects, or echoes the request headers it
received (so every secret the gateway sent) in an error, a stream's error event or an answer.

``HostileUpstream(mode).start()`` serves on a loopback port from a thread; ``hits`` lists the
(path, headers, body) of every request. Modes:

    redirect        307 to ``location`` (another server), as the issue's attack
    echo_error      500 with the headers in the error message (stream or not)
    echo_midstream  a 200 stream: two content chunks, then an error event with the headers
    echo_answer     a 200 answer (or stream) whose content is the headers
    echo_split      a 200 stream whose content is the headers in 7-character chunks, so every
                    secret is split across events
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


class HostileUpstream:
    def __init__(self, mode: str, location: str = "") -> None:
        self.mode = mode
        self.location = location
        self.hits: list[tuple[str, dict[str, str], bytes]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> HostileUpstream:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = dict(self.headers.items())
                owner.hits.append((self.path, headers, body))
                owner.answer(self, headers, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, h: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> None:
        echoed = "upstream saw headers " + json.dumps(headers)
        stream = b'"stream":true' in body.replace(b" ", b"")
        if self.mode == "redirect":
            self._send(h, 307, b"", {"Location": self.location + h.path[len("/v1"):]})
        elif self.mode == "echo_error":
            self._send(h, 500, json.dumps({"error": {"message": echoed, "type": "server_error"}}
                                          ).encode())
        elif stream:
            events = [self._chunk("partial "), self._chunk("answer ")]
            if self.mode == "echo_split":
                events += [self._chunk(echoed[i:i + 7]) for i in range(0, len(echoed), 7)]
                events.append(self._chunk("", finish="stop", usage=True))
            elif self.mode == "echo_midstream":
                events.append({"error": {"message": echoed, "type": "server_error"}})
            else:
                events += [self._chunk(echoed), self._chunk("", finish="stop", usage=True)]
            raw = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
            if self.mode != "echo_midstream":
                raw += b"data: [DONE]\n\n"
            self._send(h, 200, raw, {"Content-Type": "text/event-stream"})
        else:
            self._send(h, 200, json.dumps({
                "id": "x", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": echoed}}],
                "usage": USAGE}).encode())

    @staticmethod
    def _chunk(text: str, finish: str | None = None, usage: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"id": "x", "object": "chat.completion.chunk", "created": 1,
                               "model": "m", "choices": [{"index": 0, "delta": {
                                   "content": text} if text else {},
                                   "finish_reason": finish}]}
        if usage:
            out["usage"] = USAGE
        return out

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, raw: bytes,
              headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)
