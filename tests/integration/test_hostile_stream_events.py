"""An upstream that streams events of shapes nobody documented (a bug or an attack): after a
good chunk, a hostile event. The client still gets a well-formed stream (the good part, the
protocol's error event, ``[DONE]``), never a reset connection or a 5xx, and exactly one usage
record, billed for what was delivered. The same bodies unary get a 502, never a 500."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from tests.fakes.threaded import ThreadedServer
from tests.harness import Gateway, fake_config
from tests.moneykit import assert_invariants

GOOD = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hello "}}]}

# Each: what follows the good chunk (then the upstream's usual end: a finish chunk, [DONE]).
OPENAI_HOSTILE: list[Any] = [
    {"choices": "x"},
    {"choices": [["not", "a", "choice"]]},
    {"choices": [{"delta": ["a"]}]},
    {"choices": [{"index": 0, "delta": {"content": 5}}]},
    {"choices": [{"index": 0, "delta": {"content": {"nested": "x"}}}]},
    {"choices": [{"index": "0", "delta": {"tool_calls": "x"}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": "a", "function": 7}]}}]},
    {"choices": [{"index": 0, "delta": {"reasoning_content": {"a": 1}}}]},
    {"choices": [{"index": 0, "delta": {"content": "ok"}}], "usage": "lots"},
    {"choices": [], "usage": {"prompt_tokens": "1e99", "completion_tokens": -5}},
    {"choices": [], "usage": {"prompt_tokens": 10**30, "completion_tokens": 10**30}},
    {"choices": [{"index": 0, "delta": {"content": "\x00\udfff"}, "finish_reason": 7}]},
    {"choices": [{"index": 0, "delta": {"content": "x"}}], "model": {"m": 1}},
    {"error": ["not", "a", "dict"]},
]

ANTHROPIC_HOSTILE: list[Any] = [
    {"type": "content_block_delta", "index": 0, "delta": {"type": ["text_delta"], "text": "x"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 7}},
    {"type": "content_block_delta", "index": "0", "delta": "x"},
    {"type": "content_block_start", "index": 1, "content_block": "x"},
    {"type": "content_block_start", "index": 1, "content_block": {"type": ["tool_use"]}},
    {"type": "message_delta", "delta": {"stop_reason": 5}, "usage": "lots"},
    {"type": "message_delta", "delta": [], "usage": {"output_tokens": "1e99"}},
    {"type": ["message_stop"]},
]


def _anthropic_start() -> list[dict[str, Any]]:
    return [{"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                "content": [], "usage": {"input_tokens": 5, "output_tokens": 0}}},
            {"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": "hello "}}]


def _anthropic_end() -> list[dict[str, Any]]:
    return [{"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
             "usage": {"output_tokens": 2}},
            {"type": "message_stop"}]


HUGE = 3 * 1024 * 1024  # bytes: past a provider's max_answer_mb of 1


async def _huge_stream(resp: web.StreamResponse) -> None:
    await resp.write(b"data: " + orjson.dumps(GOOD) + b"\n\n")
    await resp.write(b"data: {\"choices\": [{\"delta\": {\"content\": \"")
    for _ in range(HUGE // 65536):  # one event that never ends
        await resp.write(b"x" * 65536)
        await asyncio.sleep(0)


class Hostile(ThreadedServer):
    """Streams GOOD, then ``event``, then a normal end, in one write or one event a write."""

    def __init__(self, dialect: str) -> None:
        super().__init__()
        self.dialect = dialect
        self.event: Any = None
        self.one_write = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._chat)
        app.router.add_post("/v1/embeddings", self._chat)
        return app

    def _events(self) -> list[bytes]:
        if self.dialect == "anthropic":
            events = [*_anthropic_start(), self.event, *_anthropic_end()]
            return [b"event: x\ndata: " + orjson.dumps(e) + b"\n\n" for e in events]
        end = [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
               {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}]
        return [b"data: " + orjson.dumps(e) + b"\n\n"
                for e in (GOOD, self.event, *end)] + [b"data: [DONE]\n\n"]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if self.event in ("HUGE", "BOMB"):
            return await self._huge(request, bool(body.get("stream")))
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(self.event), content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        events = self._events()
        if self.one_write:
            await resp.write(b"".join(events))
        else:
            for e in events:
                await resp.write(e)
                await asyncio.sleep(0.002)  # one event a read, most likely
        await resp.write_eof()
        return resp

    async def _huge(self, request: web.Request, stream: bool) -> web.StreamResponse:
        if stream:
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            with contextlib.suppress(ConnectionError):
                await _huge_stream(resp)
                await resp.write_eof()
            return resp
        answer = orjson.dumps({"choices": [{"index": 0, "message": {
            "role": "assistant", "content": "x" * HUGE}}]})
        if self.event == "BOMB":  # small on the wire, 3 MiB once decompressed
            return web.Response(body=gzip.compress(answer), headers={
                "content-type": "application/json", "content-encoding": "gzip"})
        return web.Response(body=answer, content_type="application/json")


@pytest.fixture(params=["openai", "anthropic"])
def hostile(request: pytest.FixtureRequest) -> Iterator[Hostile]:
    server = Hostile(request.param).start()
    yield server  # type: ignore[misc]
    server.stop()


def _stream(gw: Gateway, key: str) -> tuple[int, list[str]]:
    with httpx.stream("POST", gw.base_url + "/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": "kimi-k2", "stream": True, "max_tokens": 50,
                            "messages": [{"role": "user", "content": "hi"}]}) as r:
        return r.status_code, [line[6:] for line in r.iter_lines() if line.startswith("data: ")]


def test_hostile_stream_events_end_the_stream_cleanly_and_bill_once(
        hostile: Hostile, make_inproc: Any) -> None:
    gw: Gateway = make_inproc(fake_config(hostile))
    key = gw.key(credit="10")
    cases = ANTHROPIC_HOSTILE if hostile.dialect == "anthropic" else OPENAI_HOSTILE
    answered, wrong = 0, []
    for one_write in (True, False):
        hostile.one_write = one_write
        for event in cases:
            hostile.event = event
            try:
                status, events = _stream(gw, key)
            except httpx.HTTPError as exc:  # a reset connection
                wrong.append((event, one_write, repr(exc)))
                answered += 1
                continue
            answered += 1
            if status >= 500 and status != 502:
                wrong.append((event, one_write, status))
            elif status == 200 and (not events or events[-1] != "[DONE]" or not all(
                    isinstance(orjson.loads(e), dict) for e in events[:-1])):
                wrong.append((event, one_write, events))
    assert not wrong, wrong
    records = gw.wait_usage(answered)
    assert len(records) == answered and len({r["id"] for r in records}) == answered
    assert all(r["http_status"] < 500 or r["status"] in ("partial", "upstream_error")
               for r in records), records
    # the good chunk was delivered each time: it is billed (never a negative or huge cost)
    assert all(0 <= r["cost_micro"] < 1_000_000 for r in records), records
    assert_invariants(gw, gw.account("admin"))  # balance = its transactions


def test_hostile_unary_bodies_get_a_502_not_a_500(hostile: Hostile, make_inproc: Any) -> None:
    gw: Gateway = make_inproc(fake_config(hostile))
    key = gw.key(credit="10")
    cases = ANTHROPIC_HOSTILE if hostile.dialect == "anthropic" else OPENAI_HOSTILE
    wrong = []
    bodies = [*cases, [1, 2], "text", None, {"choices": [{"message": ["x"]}]},
                  {"choices": [{"index": 0, "message": {"role": "assistant", "content": 5}}]},
                  {"choices": [{"index": 0, "message": {"content": "ok"}}],
                   "usage": {"prompt_tokens": 10**30, "completion_tokens": -1}}]
    for event in bodies:
        hostile.event = event
        r = httpx.post(gw.base_url + "/v1/chat/completions", timeout=30,
                       headers={"Authorization": f"Bearer {key}"},
                       json={"model": "kimi-k2", "max_tokens": 50,
                             "messages": [{"role": "user", "content": "hi"}]})
        if r.status_code not in (200, 502) or (
                r.status_code == 200 and not isinstance(r.json().get("choices"), list)):
            wrong.append((event, r.status_code, r.text[:200]))
    assert not wrong, wrong
    records = gw.wait_usage(len(bodies))  # one record per answered request
    assert len(records) == len(bodies), records
    assert all(0 <= r["cost_micro"] < 1_000_000 for r in records), records
    assert_invariants(gw, gw.account("admin"))  # balance = its transactions


def test_hostile_embedding_bodies_get_a_502_not_a_500(make_inproc: Any) -> None:
    server = Hostile("openai").start()
    try:
        gw: Gateway = make_inproc(fake_config(server, models={"emb": {
            "kind": "embedding", "family": "qwen", "input_price": "0.1", "output_price": "0",
            "context_window": 8192,
            "routes": [{"provider": "fake0", "upstream_model": "e"}]}}))
        key = gw.key(credit="10")
        wrong = []
        bodies = [[1], "x", None, {"data": "x"}, {"data": [1, "a"]}, {"data": [{"embedding": 5}]},
                  {"object": "list", "data": [], "usage": "lots"},
                  {"data": [{"embedding": [0.1], "index": 0}],
                   "usage": {"prompt_tokens": -5, "total_tokens": 10**30}}]
        for event in bodies:
            server.event = event
            r = httpx.post(gw.base_url + "/v1/embeddings", timeout=30,
                           headers={"Authorization": f"Bearer {key}"},
                           json={"model": "emb", "input": "hello"})
            if r.status_code not in (200, 502) or (
                    r.status_code == 200 and not isinstance(r.json().get("data"), list)):
                wrong.append((event, r.status_code, r.text[:200]))
        assert not wrong, wrong
        records = gw.wait_usage(len(bodies))
        assert len(records) == len(bodies)
        assert all(0 <= r["cost_micro"] < 1_000_000 for r in records), records
        assert_invariants(gw, gw.account("admin"))  # balance = its transactions
    finally:
        server.stop()


def test_hostile_events_through_the_native_messages_protocol(make_inproc: Any) -> None:
    """/v1/messages to an Anthropic upstream passes its events on as they are: a hostile one
    still ends the client's stream with an event, never a reset, and one record."""
    server = Hostile("anthropic").start()
    try:
        gw: Gateway = make_inproc(fake_config(server))
        key = gw.key(credit="10")
        wrong, n = [], 0
        for one_write in (True, False):
            server.one_write = one_write
            for event in ANTHROPIC_HOSTILE:
                server.event = event
                n += 1
                try:
                    with httpx.stream("POST", gw.base_url + "/v1/messages", timeout=30,
                                      headers={"x-api-key": key,
                                               "anthropic-version": "2023-06-01"},
                                      json={"model": "kimi-k2", "stream": True,
                                            "max_tokens": 50, "messages": [
                                                {"role": "user", "content": "hi"}]}) as r:
                        lines = [line for line in r.iter_lines() if line.startswith("event: ")]
                        status = r.status_code
                except httpx.HTTPError as exc:
                    wrong.append((event, one_write, repr(exc)))
                    continue
                if (status >= 500 and status != 502) or (status == 200 and (
                        not lines or lines[-1] not in ("event: message_stop", "event: error"))):
                    wrong.append((event, one_write, status, lines[-3:]))
        assert not wrong, wrong
        records = gw.wait_usage(n)
        assert len(records) == n and all(0 <= r["cost_micro"] < 1_000_000 for r in records)
        assert_invariants(gw, gw.account("admin"))
    finally:
        server.stop()


def test_an_answer_past_max_answer_mb_is_a_502_or_an_error_event(
        make_inproc: Any) -> None:
    server = Hostile("openai").start()
    try:
        cfg = fake_config(server)
        cfg["providers"]["fake0"]["max_answer_mb"] = 1
        gw: Gateway = make_inproc(cfg)
        key = gw.key(credit="10")
        auth = {"Authorization": f"Bearer {key}"}
        chat = {"model": "kimi-k2", "max_tokens": 50, "messages": [
            {"role": "user", "content": "hi"}]}
        for event in ("HUGE", "BOMB"):
            server.event = event
            r = httpx.post(gw.base_url + "/v1/chat/completions", headers=auth, json=chat,
                           timeout=30)
            assert r.status_code == 502 and "max_answer_mb" in r.text, (event, r.text[:300])
        server.event = "HUGE"
        status, events = _stream(gw, key)
        assert status == 200 and events[-1] == "[DONE]"
        assert "hello" in events[0] and "max_answer_mb" in events[-2], events[-2][:300]
        records = gw.wait_usage(3)
        assert [r["http_status"] for r in sorted(records, key=lambda r: r["created_at"])] == [
            502, 502, 200]
        assert {r["status"] for r in records} == {"upstream_error", "partial"}
        assert_invariants(gw, gw.account("admin"))
    finally:
        server.stop()
