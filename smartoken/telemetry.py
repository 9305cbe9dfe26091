"""Optional OpenTelemetry traces: one span per request, a child span per upstream attempt.

Off unless ``SMARTOKEN_OTEL=otlp`` (then ``pip install 'smartoken[otel]'``). Spans are built
from the finished usage record, after the answer, so tracing adds nothing to a request's path
but one attribute check when off. They follow the OpenTelemetry GenAI semantic conventions
(``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.provider.name``, ``gen_ai.usage.input_tokens`` / ``output_tokens``), plus
``smartoken.*`` attributes for what the conventions do not name (cost, account, key, route,
protocol, status). No prompt or answer text is ever put in a span.

The exporter is OTLP over HTTP/protobuf, configured by the standard variables
(``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``, default
``http://localhost:4318``; ``OTEL_EXPORTER_OTLP_HEADERS``; ``OTEL_SERVICE_NAME``, default
``smartoken``), batched by a background thread and flushed at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from smartoken.config import ConfigError
from smartoken.ledger.records import OK, UsageRecord

log = logging.getLogger("smartoken.telemetry")

OPERATIONS = {"embeddings": "embeddings", "completions": "text_completion"}


class Tracer(Protocol):
    def record(self, rec: UsageRecord) -> None:
        """Emit the spans of one finished request."""
        ...

    def shutdown(self) -> None:
        """Flush what is batched and stop the exporter."""
        ...


class OtelTracer:
    """Spans through an OpenTelemetry SDK ``TracerProvider`` (any span processor)."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._provider = provider
        self._tracer = provider.get_tracer("smartoken")

    def record(self, rec: UsageRecord) -> None:
        try:
            self._emit(rec)
        except Exception:  # telemetry never breaks a request's accounting
            log.warning("span for request %s not emitted", rec.id, exc_info=True)

    def _emit(self, rec: UsageRecord) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        operation = OPERATIONS.get(rec.protocol, "chat")
        start = int(rec.created_at.timestamp() * 1e9)
        end = start + rec.latency_ms * 1_000_000
        root = self._tracer.start_span(
            f"{operation} {rec.requested_model}", kind=SpanKind.SERVER, start_time=start,
            attributes=_root_attributes(rec, operation))
        if rec.status != OK:
            root.set_status(Status(StatusCode.ERROR, (rec.error or rec.status)[:200]))
        ctx = self._trace.set_span_in_context(root)
        for attempt in _attempts(rec):
            ok = attempt.get("kind") == "ok"
            a_start = start
            a_end = end if ok else start + int(attempt.get("ms", 0) * 1_000_000)
            route = str(attempt.get("route", ""))
            upstream = route.rsplit("/", 1)[-1] if "/" in route else route
            provider = route.split(":", 1)[-1].split("/", 1)[0] if ":" in route else ""
            span = self._tracer.start_span(
                f"{operation} {upstream}", context=ctx, kind=SpanKind.CLIENT,
                start_time=a_start, attributes={
                    "gen_ai.operation.name": operation, "gen_ai.request.model": upstream,
                    "gen_ai.provider.name": provider, "smartoken.route": route,
                    "http.response.status_code": int(attempt.get("status", 0) or 0)})
            if not ok:
                span.set_attribute("error.type", str(attempt.get("kind", "error")))
                span.set_status(Status(StatusCode.ERROR, str(attempt.get("error", ""))[:200]))
            span.end(end_time=max(a_start, a_end))
        root.end(end_time=end)

    def shutdown(self) -> None:
        self._provider.shutdown()


def _root_attributes(rec: UsageRecord, operation: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": rec.requested_model,
        "gen_ai.usage.input_tokens": rec.prompt_tokens,
        "gen_ai.usage.output_tokens": rec.completion_tokens,
        "http.response.status_code": rec.http_status,
        "smartoken.request_id": rec.id,
        "smartoken.model": rec.model,
        "smartoken.account_id": rec.account_id,
        "smartoken.key_id": rec.key_id,
        "smartoken.protocol": rec.protocol,
        "smartoken.status": rec.status,
        "smartoken.stream": rec.stream,
        "smartoken.cost_micro_usd": rec.cost_micro,
        "smartoken.usage_estimated": rec.usage_estimated,
        "smartoken.cached_input_tokens": rec.cached_tokens,
        "smartoken.reasoning_tokens": rec.reasoning_tokens,
    }
    if rec.upstream_model:
        out["gen_ai.response.model"] = rec.upstream_model
    if rec.provider:
        out["gen_ai.provider.name"] = rec.provider
    if rec.ttft_ms is not None:
        out["smartoken.ttft_ms"] = rec.ttft_ms
    if rec.status != OK:
        out["error.type"] = rec.status
    return out


def _attempts(rec: UsageRecord) -> list[dict[str, Any]]:
    """The attempt chain: the record's list when there was fail-over, else the one route."""
    if rec.attempts:
        try:
            items = orjson.loads(rec.attempts)
        except orjson.JSONDecodeError:
            items = None
        if isinstance(items, list):
            return [a for a in items if isinstance(a, dict)]
    if rec.route is None:
        return []
    kind = "ok" if rec.status == OK else rec.status
    return [{"route": rec.route, "kind": kind, "status": rec.http_status,
             "error": rec.error or ""}]


def from_env(env: Mapping[str, str]) -> Tracer | None:
    """The tracer ``SMARTOKEN_OTEL`` asks for, or None (tracing off)."""
    mode = env.get("SMARTOKEN_OTEL", "").strip().lower()
    if mode in ("", "0", "off", "false", "none"):
        return None
    if mode != "otlp":
        raise ConfigError("environment", "SMARTOKEN_OTEL",
                          f"must be 'otlp' or unset, got {mode!r}")
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigError("environment", "SMARTOKEN_OTEL", "otlp needs the OpenTelemetry SDK: "
                          "pip install 'smartoken[otel]'") from None
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318").rstrip("/")
        + "/v1/traces")
    headers = dict(part.split("=", 1) for part in
                   env.get("OTEL_EXPORTER_OTLP_HEADERS", "").split(",") if "=" in part)
    provider = TracerProvider(resource=Resource.create(
        {"service.name": env.get("OTEL_SERVICE_NAME", "smartoken")}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint, headers=headers or None),
        schedule_delay_millis=int(env.get("OTEL_BSP_SCHEDULE_DELAY", "1000"))))
    return OtelTracer(provider)
