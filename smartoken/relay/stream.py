"""Relaying an upstream stream to the client as SSE, read by read (the chunks one upstream read
brought go out in one write), never held back.

Once the first byte is out the status is fixed: a later upstream failure ends the stream with
an in-band error event and ``[DONE]``; delivered tokens are billed (counted by tokenizer when
the upstream sent no usage) and the record is marked partial. A client that disconnects
cancels the upstream call at once and is recorded as ``client_closed``. A stream still running
at the shutdown deadline ends with an error event too, and is billed for what it delivered.
About once a second (``PROGRESS_S``) a running stream writes its record so far to the crash
journal (status partial, billed for what it delivered): if the process is killed mid-stream,
recovery bills it for that (issue 12, item 8).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from smartoken import tokens as tokens_of
from smartoken.errors import UpstreamFailed
from smartoken.ledger import records
from smartoken.protocols.base import StreamFramer
from smartoken.providers.base import JSON, UpstreamError, Usage
from smartoken.relay.pipeline import Call, Delivered, _note_failure, _record, usage_record
from smartoken.routing.router import Route
from smartoken.state import AppState

PROGRESS_S = 1.0  # seconds between a running stream's progress lines in the crash journal
CUT_BY_DEATH = "stream cut: the gateway process serving it stopped; billed for what it delivered"
SHUTDOWN_TAIL_S = 1.0  # at most this long to write the error event of a stream cut by shutdown
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class RelayStream:
    """An ASGI response that pumps ``it`` to the client and settles when it ends. The bytes
    are the client protocol's (``framer``); reading usage and what was delivered is the
    relay's, whatever the protocol."""

    def __init__(self, state: AppState, call: Call, route: Route, provider: Any,
                 it: AsyncIterator[list[JSON]], first: list[JSON],
                 framer: StreamFramer) -> None:
        self.state, self.call, self.route, self.provider = state, call, route, provider
        self.it, self.first, self.framer = it, first, framer
        self.delivered = Delivered()
        self.client_gone = False
        self._counted = (0, 0)  # (parts counted, their tokens) for the progress lines

    async def _watch(self, receive: Any, task: asyncio.Task[Any]) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                task.cancel()
                return

    def _frame(self, chunk: JSON) -> bytes | None:
        """Take usage and delivered text from one canonical chunk; the framer's bytes for it."""
        dialect = self.provider.dialect
        usage = dialect.usage(chunk)
        if usage is not None:
            self.delivered.usage = usage  # the last value wins; never added up
        chunk.pop("usage", None)
        if chunk.get("choices"):
            self.delivered.take(chunk)
            if self.delivered.first_at is None:
                self.delivered.first_at = time.perf_counter()
        return self.framer.chunk(chunk)

    def _frames(self, batch: list[JSON]) -> bytes:
        """The bytes of the chunks one upstream read brought: one write to the client, not
        one per chunk (a burst of 20 chunks was 20 writes, each a system call)."""
        if len(batch) == 1:
            return self._frame(batch[0]) or b""
        return b"".join(data for chunk in batch if (data := self._frame(chunk)))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.ensure_future(self._watch(receive, task))
        status, error = records.OK, None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            data = self._frames(self.first)
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            tail = b""
            self._progress()
            last = time.monotonic()
            try:
                async for batch in self.it:
                    data = self._frames(batch)
                    if data:
                        await send({"type": "http.response.body", "body": data,
                                    "more_body": True})
                    if time.monotonic() - last >= PROGRESS_S:
                        self._progress()
                        last = time.monotonic()
            except UpstreamError as exc:
                if not (exc.kind == "cut" and self.delivered.finished):
                    status, error = records.PARTIAL, exc.message
                    _note_failure(self.state, self.call, self.route, exc)
                    err = UpstreamFailed(f"The upstream stream failed after it started: "
                                         f"{exc.message}", status=502)
                    tail = self.framer.fail(err, self.delivered.estimate(self.call.prompt_tokens))
            if status == records.OK:
                tail = self.framer.end(self.delivered.usage
                                       or self.delivered.estimate(self.call.prompt_tokens))
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        except asyncio.CancelledError:
            if not self.client_gone:  # cancelled by the server (shutdown grace exceeded)
                status, error = records.PARTIAL, "stream cut by the gateway shutting down"
                await self._cut_by_shutdown(send)
                raise
            task.uncancel()
            status, error = records.CLIENT_CLOSED, "client disconnected mid-stream"
        except OSError:
            status, error = records.CLIENT_CLOSED, "client disconnected mid-stream"
        finally:
            watcher.cancel()
            self._settle(status, error)
            await self.it.aclose()  # type: ignore[attr-defined]

    def _progress(self) -> None:
        """The record this stream gets if the process dies now: what it delivered. Counted
        incrementally (only the parts since the last progress line), so a long stream costs
        O(its length) in all, not once per second."""
        parts = self.delivered.parts
        done, tokens = self._counted
        tokens += tokens_of.count_text("".join(parts[done:]))
        self._counted = (len(parts), tokens)
        u = Usage(self.call.prompt_tokens, tokens)
        cost = self.call.price.cost(u.prompt_tokens, u.completion_tokens, u.cached_tokens,
                                    u.cache_write_tokens)
        self.state.ledger.progress(usage_record(
            self.state, self.call, route=self.route, status=records.PARTIAL, http=200, usage=u,
            estimated=True, ttft=self.delivered.first_at, error=CUT_BY_DEATH, cost=cost))

    async def _cut_by_shutdown(self, send: Any) -> None:
        """The shutdown deadline cut this stream: end it with the protocol's error event, so
        the client can tell a cut answer from a finished one (best effort: the connection may
        be going too)."""
        err = UpstreamFailed("The gateway is shutting down: this stream was cut at the shutdown "
                             "deadline. Retry the request.", status=503)
        tail = self.framer.fail(err, self.delivered.estimate(self.call.prompt_tokens))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(send({"type": "http.response.body", "body": tail,
                                         "more_body": False}), SHUTDOWN_TAIL_S)

    def _settle(self, status: str, error: str | None) -> None:
        d = self.delivered
        usage, estimated = d.usage, False
        if usage is None or (status != records.OK and not d.finished):
            # No usage, or the stream broke: bill what was delivered, counted by tokenizer.
            usage, estimated = d.estimate(self.call.prompt_tokens), True
        latency = (time.perf_counter() - self.call.started) * 1000
        if status == records.OK:
            ttft = None if d.first_at is None else (d.first_at - self.call.started) * 1000
            self.state.router.health.success(self.route.id, latency, ttft)
        if self.call.attempts:
            self.call.attempts.append({"route": self.route.id, "kind": status, "status": 200,
                                       "error": error or ""})
        _record(self.state, self.call, route=self.route, status=status, http=200, usage=usage,
                estimated=estimated, ttft=d.first_at, error=error)
