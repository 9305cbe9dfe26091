"""One fake upstream for every test: an OpenAI-compatible server over real HTTP that can speak
a family's dialect and inject faults.

Run it in-process (``FakeUpstream().start()`` serves on a loopback port from a background
thread) or as a program (``python -m tests.fakes.upstream --port 9000``, used by ``bench/``).
Behaviour is set per server through ``scenario`` (from the test, or ``POST /_scenario``):

    status        HTTP status to answer with (default 200); error_body is then sent as JSON
    retry_after   Retry-After header on errors
    dialect       openai | moonshot | moonshot-both | qwen | deepseek | glm | ernie | hunyuan |
                  minimax | doubao | anthropic: where usage and reasoning sit, what requests the
                  vendor rejects, its error bodies (tests/fakes/dialects.py; anthropic serves
                  POST /v1/messages, tests/fakes/anthropic.py)
    out_of_balance  answer as the vendor does when the route's account is out of money
    finish_reason the final finish_reason (e.g. GLM's "sensitive" or "network_error")
    content       the answer text (split into ``chunks`` pieces when streaming)
    chunks        number of content chunks in a stream (default 20)
    chunk_delay   seconds between stream chunks
    split_every   anthropic: stream the text in pieces of this many characters (not words)
    first_byte_delay  seconds before the response starts
    cut_after     close the connection after N content chunks (no [DONE])
    malformed_after  send a broken JSON chunk after N content chunks
    no_usage      send no usage at all
    no_done       end the stream without [DONE] (but with finish_reason)
    hang          never answer
    tool_call     {"name":..., "arguments":...}: answer with a tool call
    tool_call_once  answer with ``tool_call`` only to a request with tools and no tool result
    usage         {"prompt_tokens":..., "completion_tokens":..., ...}: reported usage
                  (otherwise the meter's, tests/fakes/meter.py: what was received, sized)
    default_output  tokens the model writes when no limit it honours was sent
    honours       the output-limit fields honoured (default: the dialect's documented ones)
    audio_bytes_per_s  bit rate assumed for non-WAV audio parts
    overbill      k: report (and bill) k times the metered usage: an upstream that lies
    models        the ids GET /v1/models lists
    key_status    {"<vendor key>": status}: requests made with that key (Bearer or x-api-key)
                  are refused with that status (401: an invalid key, 429: its rate limit)

Every request received is kept in ``requests`` (JSON bodies), and ``active_streams`` counts
streams in flight; ``cancelled`` counts streams whose client went away. ``billed`` keeps the
usage the fake billed for each answered request (a cut or abandoned stream: what it sent), so
a test can sum the upstream-reported cost (``billed_cost``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
import time
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import anthropic, dialects, fim, meter

DEFAULT_CONTENT = "The quick brown fox jumps over the lazy dog and keeps running far away."


class FakeUpstream:
    def __init__(self, **scenario: Any) -> None:
        self.scenario: dict[str, Any] = dict(scenario)
        self.requests: list[dict[str, Any]] = []
        self.billed: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.active_streams = 0
        self.cancelled = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    def set(self, **scenario: Any) -> None:
        self.scenario = dict(scenario)

    def reset(self, **scenario: Any) -> None:
        self.set(**scenario)
        self.requests.clear()
        self.billed.clear()
        self.headers.clear()
        self.cancelled = 0

    @property
    def dialect(self) -> str:
        """The gateway dialect that speaks to this fake (read by ``harness.fake_config``)."""
        return str(self.scenario.get("dialect", "openai")).split("-")[0]

    def billed_cost(self, price: Any) -> int:
        """The upstream-reported cost of everything billed so far, at ``price`` (a Price)."""
        return sum(price.cost(u.get("prompt_tokens", 0), u.get("completion_tokens", 0))
                   for u in list(self.billed))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ server

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_post("/beta/completions", self.fim)  # DeepSeek's FIM
        app.router.add_post("/v1/completions", self.fim)  # Qwen's
        app.router.add_post("/v1/messages", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/models", self.models)
        app.router.add_post("/_scenario", self._set_scenario)
        app.router.add_get("/_requests", self._get_requests)
        return app

    async def _set_scenario(self, request: web.Request) -> web.Response:
        self.reset(**(await request.json()))
        return web.json_response({"ok": True})

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests, "cancelled": self.cancelled,
                                  "active_streams": self.active_streams})

    def start(self) -> FakeUpstream:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            # a short shutdown: hanging handlers are cancelled, not left to the GC
            self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="fake-upstream")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            with contextlib.suppress(Exception):
                fut.result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(5)

    # ------------------------------------------------------------------ answers

    def _usage(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        s = self.scenario
        if "usage" in s:
            u = dict(s["usage"])
            u.setdefault("total_tokens", u["prompt_tokens"] + u["completion_tokens"])
            return u
        return meter.usage(str(s.get("dialect", "openai")), body, s, text)

    async def _error(self) -> web.Response:
        s = self.scenario
        headers = {}
        if s.get("retry_after") is not None:
            headers["Retry-After"] = str(s["retry_after"])
        body = s.get("error_body") or {"error": {"message": "fake upstream failure",
                                                 "type": "server_error", "code": None}}
        return web.Response(status=int(s["status"]), body=orjson.dumps(body),
                            content_type="application/json", headers=headers)

    async def models(self, request: web.Request) -> web.Response:
        refused = self._key_refusal(request)
        if refused is not None:
            return refused
        ids = self.scenario.get("models", ["fake-model-a", "fake-model-b"])
        return web.json_response({"object": "list", "data": [{"id": i, "object": "model"}
                                                             for i in ids]})

    def _key_refusal(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-api-key") or \
            request.headers.get("Authorization", "").removeprefix("Bearer ")
        status = (self.scenario.get("key_status") or {}).get(key)
        if status is None:
            return None
        message = "Incorrect API key provided" if status == 401 else "Rate limit reached"
        after = self.scenario.get("retry_after")
        return web.Response(status=int(status), content_type="application/json",
                            headers={"Retry-After": str(after)} if after is not None else None,
                            body=orjson.dumps({"error": {"message": message,
                                                         "type": "invalid_request_error"}}))

    async def fim(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({**body, "_path": request.path})
        text = self.scenario.get("content", DEFAULT_CONTENT)
        usage = self.scenario.get("usage") or {"prompt_tokens": 10, "completion_tokens": 5}
        return await fim.answer(request, body, text, {**usage, "total_tokens": sum(
            usage.values())})

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.scenario.get("status", 200) != 200:
            return await self._error()
        inp = body.get("input")
        items = inp if isinstance(inp, list) else [inp]
        data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                for i, _ in enumerate(items)]
        n = sum(len(str(x).split()) for x in items)
        return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": {"prompt_tokens": n, "total_tokens": n}})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw)
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        s = self.scenario
        if s.get("hang"):
            await asyncio.sleep(3600)
        if s.get("first_byte_delay"):
            await asyncio.sleep(float(s["first_byte_delay"]))
        if s.get("status", 200) != 200:
            return await self._error()
        refused = self._key_refusal(request)
        if refused is not None:
            return refused
        dialect = s.get("dialect", "openai")
        refusal = dialects.out_of_balance(dialect) if s.get("out_of_balance") else \
            dialects.check_request(dialect, body, bool(body.get("stream")))
        if dialect == "anthropic" and refusal is None:
            bad = anthropic.check(request, body)
            if bad is not None:
                return bad
        if refusal is not None:
            return web.Response(status=refusal[0], body=orjson.dumps(refusal[1]),
                                content_type="application/json")
        text = s.get("content", DEFAULT_CONTENT)
        if dialect == "anthropic":
            return await anthropic.answer(request, body, s, text)
        if body.get("stream"):
            return await self._stream(request, body, text)
        return self._complete(body, text)

    def _head(self, body: dict[str, Any], obj: str) -> dict[str, Any]:
        return {"id": "chatcmpl-fake123", "object": obj, "created": int(time.time()),
                "model": body.get("model"), "system_fingerprint": "fp_fake"}

    def _effective(self, body: dict[str, Any]) -> dict[str, Any]:
        """The scenario for this request: with ``tool_call_once``, a request that offers no
        tools or already carries a tool result is answered with text (an agent's task then
        completes)."""
        s = self.scenario
        if s.get("tool_call_once") and (not body.get("tools") or any(
                isinstance(m, dict) and m.get("role") == "tool"
                for m in body.get("messages", []))):
            return {k: v for k, v in s.items() if k != "tool_call"}
        return s

    def _complete(self, body: dict[str, Any], text: str) -> web.Response:
        s = self._effective(body)
        dialect = s.get("dialect", "openai")
        message: dict[str, Any] = {"role": "assistant", "content": dialects.content_with_reasoning(
            dialect, body, text, s.get("reasoning"))}
        finish = s.get("finish_reason", "stop")
        if s.get("tool_call"):
            tc = s["tool_call"]
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_fake1", "type": "function",
                "function": {"name": tc["name"], "arguments": tc["arguments"]}}]}
            finish = "tool_calls"
        if s.get("reasoning"):
            message.update(dialects.reasoning_fields(dialect, body, s["reasoning"]))
        resp = {**self._head(body, "chat.completion"),
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": finish}]}
        usage = self._usage(body, text)
        self.billed.append(usage)
        if not s.get("no_usage"):
            resp["usage"] = usage
        return web.Response(body=orjson.dumps(resp), content_type="application/json")

    async def _stream(self, request: web.Request, body: dict[str, Any],
                      text: str) -> web.StreamResponse:
        s = self._effective(body)
        dialect = s.get("dialect", "openai")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        self.active_streams += 1
        head = self._head(body, "chat.completion.chunk")
        n = int(s.get("chunks", 20))
        words = text.split(" ")
        per = max(1, -(-len(words) // n))
        pieces = [" ".join(words[i:i + per]) + (" " if i + per < len(words) else "")
                  for i in range(0, len(words), per)]
        delay = float(s.get("chunk_delay", 0))
        want_usage = (body.get("stream_options") or {}).get("include_usage")
        usage = self._usage(body, text)
        sent: list[str] = []
        finished = False

        async def send(obj: Any) -> None:
            await resp.write(b"data: " + orjson.dumps(obj) + b"\n\n")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                         "finish_reason": finish}]}

        try:
            await send(chunk({"role": "assistant", "content": ""}))
            if s.get("tool_call"):
                tc = s["tool_call"]
                if s.get("reasoning"):
                    await send(chunk(dialects.reasoning_fields(dialect, body, s["reasoning"])))
                await send(chunk({"tool_calls": [{"index": 0, "id": "call_fake1",
                                                  "type": "function", "function": {
                                                      "name": tc["name"], "arguments": ""}}]}))
                await send(chunk({"tool_calls": [{"index": 0, "function": {
                    "arguments": tc["arguments"]}}]}))
            else:
                for i, piece in enumerate(pieces):
                    if s.get("cut_after") is not None and i >= int(s["cut_after"]):
                        request.transport.close()  # type: ignore[union-attr]
                        return resp
                    if s.get("malformed_after") is not None and i >= int(s["malformed_after"]):
                        await resp.write(b'data: {"choices": [{"delta": \n\n')
                        return resp
                    if delay:
                        await asyncio.sleep(delay)
                    delta: dict[str, Any] = {"content": piece}
                    if s.get("reasoning") and i == 0:
                        delta.update(dialects.reasoning_fields(dialect, body, s["reasoning"]))
                    await send(chunk(delta))
                    sent.append(piece)
            finished = True
            finish = chunk({}, "tool_calls" if s.get("tool_call") else
                           s.get("finish_reason", "stop"))
            if s.get("no_usage"):
                await send(finish)
            else:
                for obj in dialects.final_chunks(dialect, head, finish, usage, bool(want_usage)):
                    await send(obj)
            if not s.get("no_done"):
                await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.cancelled += 1
            raise
        finally:
            self.active_streams -= 1
            if finished:
                self.billed.append(usage)
            else:  # cut or abandoned: the vendor bills the prompt and what it wrote
                self.billed.append({"prompt_tokens": usage["prompt_tokens"],
                                    "completion_tokens": meter.tokens.count_text("".join(sent))})
        return resp


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible upstream")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--first-byte-delay", type=float, default=0.0)
    args = parser.parse_args()
    fake = FakeUpstream(chunks=args.chunks, chunk_delay=args.chunk_delay,
                        first_byte_delay=args.first_byte_delay)
    fake.requests = _Discard()  # type: ignore[assignment]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(fake.app(), host="127.0.0.1", port=args.port, access_log=None,
                print=lambda *_: None)


class _Discard(list):  # type: ignore[type-arg]
    """Keeps nothing: a long benchmark must not grow memory."""

    def append(self, _item: Any) -> None:
        return None


if __name__ == "__main__":
    main()
