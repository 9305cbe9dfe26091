"""Issue 14: optional OpenTelemetry traces, exported over OTLP/HTTP to a local collector: one
server span per request, a client span per upstream attempt, GenAI attribute names."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from tests.harness import fake_config, free_port


class Collector:
    """An OTLP/HTTP trace receiver on a loopback port (protobuf, as the exporter sends)."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.port = free_port()
        self._loop: Any = None

    async def traces(self, request: web.Request) -> web.Response:
        msg = ExportTraceServiceRequest()
        msg.ParseFromString(await request.read())
        for rs in msg.resource_spans:
            for ss in rs.scope_spans:
                self.spans.extend(ss.spans)
        return web.Response(body=b"", content_type="application/x-protobuf")

    def start(self) -> Collector:
        import asyncio

        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/v1/traces", self.traces)
            runner = web.AppRunner(app)
            self._loop.run_until_complete(runner.setup())
            self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self

    def wait(self, n: int, timeout: float = 10) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.spans) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.spans)


def attrs(span: Any) -> dict[str, Any]:
    out = {}
    for kv in span.attributes:
        v = kv.value
        out[kv.key] = v.string_value or v.int_value or v.bool_value or v.double_value
    return out


def test_spans_per_request_and_attempt(make_fake: Any, make_inproc: Any) -> None:
    collector = Collector().start()
    broken = make_fake(status=500)
    good = make_fake(usage={"prompt_tokens": 11, "completion_tokens": 7})
    config = fake_config(broken, good, models={"kimi-k2": {"routes": [
        {"provider": "fake0", "upstream_model": "up-a", "priority": 10},
        {"provider": "fake1", "upstream_model": "up-b", "priority": 5}]}})
    gw = make_inproc(config, env={
        "SMARTOKEN_OTEL": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:"
        f"{collector.port}", "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_SERVICE_NAME": "gw-test"})
    client = gw.client(gw.key(credit="5"))
    resp = client.chat.completions.create(model="kimi-k2", messages=[
        {"role": "user", "content": "a secret prompt"}])
    spans = collector.wait(3)
    assert len(spans) == 3, spans
    [root] = [s for s in spans if not s.parent_span_id]
    children = [s for s in spans if s.parent_span_id]
    assert root.name == "chat kimi-k2" and root.kind == 2  # SERVER
    a = attrs(root)
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "kimi-k2"
    assert a["gen_ai.response.model"] == "up-b" and a["gen_ai.provider.name"] == "fake1"
    assert a["gen_ai.usage.input_tokens"] == 11 and a["gen_ai.usage.output_tokens"] == 7
    [rec] = gw.wait_usage(1)
    assert a["smartoken.request_id"] == rec["id"] and resp.choices[0].message.content
    assert a["smartoken.cost_micro_usd"] == rec["cost_micro"] > 0
    assert {c.trace_id for c in children} == {root.trace_id}
    assert all(c.parent_span_id == root.span_id and c.kind == 3 for c in children)  # CLIENT
    failed, served = sorted(children, key=lambda c: attrs(c).get("error.type") is None)
    assert failed.name == "chat up-a" and attrs(failed)["error.type"] == "server"
    assert failed.status.code == 2 and served.status.code != 2
    assert served.name == "chat up-b" and attrs(served)["http.response.status_code"] == 200
    assert root.start_time_unix_nano <= served.start_time_unix_nano
    assert served.end_time_unix_nano <= root.end_time_unix_nano
    assert "a secret prompt" not in str(spans)


def test_tracing_is_off_by_default_and_refuses_a_bad_mode(make_inproc: Any) -> None:
    from smartoken.config import ConfigError
    from smartoken.telemetry import from_env

    assert from_env({}) is None and from_env({"SMARTOKEN_OTEL": "off"}) is None
    with pytest.raises(ConfigError, match="SMARTOKEN_OTEL"):
        from_env({"SMARTOKEN_OTEL": "zipkin"})
