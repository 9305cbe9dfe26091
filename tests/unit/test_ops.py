"""Issue 8 units: redaction, JSON log lines, the auth-failure table, base URL validation,
the secret box, ops settings, metrics from usage records, readiness on SIGTERM."""

from __future__ import annotations

import io
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from smartoken import logs as logs_mod
from smartoken.api.edge import AuthFailures
from smartoken.api.providers_admin import validate_base_url
from smartoken.auth.secretbox import SecretBox, SecretKeyError, generate_key
from smartoken.config import ConfigError, load_settings
from smartoken.errors import InvalidRequest
from smartoken.ledger.records import UsageRecord
from smartoken.logs import JsonFormatter, Redactor, configure_logging, log_request
from smartoken.metrics import Metrics
from smartoken.routing.health import HealthBoard
from smartoken.server import GracefulServer, mark_unready

# ------------------------------------------------------------------ redaction and log lines


@pytest.mark.parametrize("text, secret", [
    ("auth failed for sk-st-AbCdEf1234567890abcdefXYZ", "sk-st-AbCdEf1234567890abcdefXYZ"),
    ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
    ('{"api_key": "upstream-key-123"}', "upstream-key-123"),
    ("password=hunter2hunter2&x=1", "hunter2hunter2"),
    ("connect postgresql://user:pg-pass-99@db/x", "pg-pass-99"),
    ("x-api-key: zzz-secret-zzz", "zzz-secret-zzz"),
    ("master_key=mk-0000000", "mk-0000000"),
])
def test_redactor_patterns(text: str, secret: str) -> None:
    out = Redactor()(text)
    assert secret not in out and "***" in out


@pytest.mark.parametrize("hint", [
    "Missing API key: send 'Authorization: Bearer sk-st-...'.",
    "Malformed Authorization header: expected 'Bearer <key>'.",
])
def test_redactor_leaves_our_own_hints_readable(hint: str) -> None:
    # Issue 12 item 15: the 401 hint read "Authorization: *** ***".
    assert Redactor(["upstream-secret-0"])(hint) == hint
    assert Redactor()("Authorization: Bearer real-token-123") == "Authorization: Bearer ***"


def test_redactor_literals_and_prefixes() -> None:
    r = Redactor(["provider-secret-value", None, "short"])
    assert r("upstream said provider-secret-value twice provider-secret-value") == \
        "upstream said *** twice ***"
    assert r("short words stay") == "short words stay"  # too short to be treated as secret
    r.add("added-later-secret")
    assert "added-later-secret" not in r("x added-later-secret y")
    assert r("key sk-st-AbCdEf") == "key sk-st-AbCdEf"  # a 12-character visible prefix stays


def _capture(level: int = logging.INFO, secrets: list[str] | None = None
             ) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(Redactor(secrets or [])))
    logger = logging.getLogger(f"test.ops.{id(stream)}")
    logger.handlers = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return logger, stream


def test_json_formatter_one_object_per_line_with_extras_and_redaction() -> None:
    logger, stream = _capture(secrets=["the-provider-key"])
    logger.info("hello %s", "world", extra={"request_id": "req_1", "tokens": 3})
    try:
        raise ValueError("boom with the-provider-key inside")
    except ValueError:
        logger.exception("failed")
    lines = stream.getvalue().splitlines()
    first = orjson.loads(lines[0])
    assert first["msg"] == "hello world" and first["request_id"] == "req_1"
    assert first["tokens"] == 3 and first["level"] == "info" and first["ts"].endswith("Z")
    second = orjson.loads(lines[1])
    assert "ValueError" in second["exc"] and "the-provider-key" not in stream.getvalue()


def _record(**kw: object) -> UsageRecord:
    base: dict[str, object] = dict(
        id="req_x", created_at=datetime.now(UTC), account_id=1, key_id=7,
        requested_model="kimi-k2", model="kimi-k2", day="2026-11-22", month="2026-11",
        route="kimi-k2:p/u", provider="p", upstream_model="u", status="ok", http_status=200,
        prompt_tokens=10, completion_tokens=5, latency_ms=250, ttft_ms=40, cost_micro=1234)
    base.update(kw)
    return UsageRecord(**base)  # type: ignore[arg-type]


def test_access_lines_written_directly_equal_the_formatters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The access line skips the logging module while the gateway's handler is the only one:
    the same JSON object as through ``logging``, through the same redactor; with another
    handler listening (a test's, a host application's) it goes through ``logging``."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    monkeypatch.setattr(logs_mod, "_access_lines", logs_mod._access_lines)  # restored after
    direct: list[str] = []
    real_write = logs_mod._AccessLines.write
    monkeypatch.setattr(logs_mod._AccessLines, "write",
                        lambda self, msg, fields: (direct.append(msg),
                                                   real_write(self, msg, fields))[1])
    other = logging.StreamHandler(io.StringIO())
    try:
        configure_logging("info", ["the-provider-key"])
        rec = _record(error="upstream said the-provider-key is wrong")
        log_request(rec, "sk-st-AbCdEf")
        root.addHandler(other)
        log_request(rec, "sk-st-AbCdEf")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert direct == ["request"]  # the first line only
    assert other.stream.getvalue()  # type: ignore[attr-defined]  # the second via logging
    written, via_logging = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert written.pop("ts").endswith("Z") and via_logging.pop("ts").endswith("Z")
    assert written == via_logging
    assert written["error"] == "upstream said *** is wrong"
    assert "the-provider-key" not in stream.getvalue()


def test_request_line_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    logger, stream = _capture()
    monkeypatch.setattr("smartoken.logs.access_log", logger)
    log_request(_record(), "sk-st-AbCdEf")
    line = orjson.loads(stream.getvalue())
    assert line["request_id"] == "req_x" and line["key"] == "sk-st-AbCdEf"
    assert line["model"] == "kimi-k2" and line["route"] == "kimi-k2:p/u"
    assert line["status"] == "ok" and line["prompt_tokens"] == 10
    assert line["cost_usd"] == "0.001234" and line["latency_ms"] == 250
    quiet, quiet_stream = _capture(logging.WARNING)
    monkeypatch.setattr("smartoken.logs.access_log", quiet)
    log_request(_record(), "sk-st-AbCdEf")
    assert quiet_stream.getvalue() == ""


# ------------------------------------------------------------------ edge


def test_auth_failures_window_and_bound() -> None:
    now = [0.0]
    t = AuthFailures(limit=3, window=60, max_clients=100, clock=lambda: now[0])
    for _ in range(2):
        t.failed("1.1.1.1")
    assert t.blocked_for("1.1.1.1") == 0
    t.failed("1.1.1.1")
    assert t.blocked_for("1.1.1.1") == pytest.approx(60)
    assert t.blocked_for("2.2.2.2") == 0
    now[0] = 59.0
    assert t.blocked_for("1.1.1.1") == pytest.approx(1)
    now[0] = 60.0
    assert t.blocked_for("1.1.1.1") == 0  # the window ended
    for i in range(1000):  # a flood of addresses never grows the table past its bound
        t.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(t) <= 100
    now[0] = 200.0
    t.failed("3.3.3.3")
    assert len(t) <= 100 and t.blocked_for("3.3.3.3") == 0


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/v1", "https://api.moonshot.cn/v1",
                                 "https://h/"])
def test_base_url_accepted(url: str) -> None:
    assert validate_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["ftp://h", "https://", "//h/v1", "https://a:b@h/v1",
                                 "https://a@h/v1", "https://h/v1#x", "https://h/?q=1",
                                 "https://h:70000/", "file:///etc/passwd", 5, None,
                                 "https://h/\nx"])
def test_base_url_refused(url: object) -> None:
    with pytest.raises(InvalidRequest):
        validate_base_url(url)


# ------------------------------------------------------------------ secrets


def test_secret_box_round_trip_and_rotation() -> None:
    old, new = generate_key(), generate_key()
    token = SecretBox([old]).encrypt("provider-key")
    assert "provider-key" not in token
    both = SecretBox([new, old])
    assert both.decrypt(token) == "provider-key"
    rotated = both.rotate(token)
    assert SecretBox([new]).decrypt(rotated) == "provider-key"
    with pytest.raises(SecretKeyError, match="cannot decrypt"):
        SecretBox([new]).decrypt(token)
    with pytest.raises(SecretKeyError, match="not set"):
        SecretBox([])
    with pytest.raises(SecretKeyError, match="at least 16"):
        SecretBox(["short"])
    phrase = SecretBox(["a long passphrase, not a fernet key"])
    assert phrase.decrypt(phrase.encrypt("x")) == "x"


# ------------------------------------------------------------------ settings


def test_ops_settings_defaults_and_values(tmp_path: Path) -> None:
    s = load_settings(None, env={})
    assert s.cors_origins == () and s.shutdown_grace_s == 30 and s.shutdown_delay_s == 0
    assert s.max_header_bytes == 64 * 1024 and s.auth_failures_per_minute == 20
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cors_origins: [https://a.example]\nmax_header_kb: 16\n"
                   "shutdown_grace_s: 5\nshutdown_delay_s: 2.5\nauth_failures_per_minute: 3\n")
    s = load_settings(cfg, env={"SMARTOKEN_SECRET_KEY": "k1, k2"})
    assert s.cors_origins == ("https://a.example",) and s.max_header_bytes == 16 * 1024
    assert s.shutdown_grace_s == 5 and s.shutdown_delay_s == 2.5
    assert s.auth_failures_per_minute == 3 and s.secret_keys == ("k1", "k2")
    assert "k1" not in repr(s)


@pytest.mark.parametrize("yaml_text, key", [
    ("cors_origins: 5", "cors_origins"), ("max_header_kb: 0", "max_header_kb"),
    ("shutdown_delay_s: forever", "shutdown_delay_s"), ("log_level: chatty", "log_level"),
    ("auth_failures_per_minute: -1", "auth_failures_per_minute"),
])
def test_ops_settings_errors_name_file_and_key(tmp_path: Path, yaml_text: str,
                                               key: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    assert info.value.key == key and str(cfg) in str(info.value)


# ------------------------------------------------------------------ metrics


def _samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    src = SimpleNamespace(reserver=SimpleNamespace(in_flight=2),
                          ledger=SimpleNamespace(pending=5), router=SimpleNamespace(
                              health=HealthBoard()))
    src.router.health.failure("r1", "x", kind="quota")
    text = m.render(src).decode()  # type: ignore[arg-type]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_metrics_observe_and_render() -> None:
    m = Metrics()
    for _ in range(3):
        m.observe(_record())
    m.observe(_record(status="partial", ttft_ms=None, cost_micro=0))
    m.refused(401)
    m.refused(401)
    s = _samples(m)
    ok = (("code", "200"), ("model", "kimi-k2"), ("route", "kimi-k2:p/u"), ("status", "ok"))
    assert s[("smartoken_requests_total", ok)] == 3
    assert ("smartoken_request_errors_total", ok) not in s
    partial = (("code", "200"), ("model", "kimi-k2"), ("route", "kimi-k2:p/u"),
               ("status", "partial"))
    assert s[("smartoken_request_errors_total", partial)] == 1
    refused = (("code", "401"), ("model", ""), ("route", ""), ("status", "refused"))
    assert s[("smartoken_requests_total", refused)] == 2
    assert s[("smartoken_tokens_total", (("key", "7"), ("kind", "prompt"),
                                         ("model", "kimi-k2")))] == 40
    assert s[("smartoken_cost_micro_usd_total", (("key", "7"), ("model", "kimi-k2")))] == 3702
    assert s[("smartoken_time_to_first_token_seconds_count", (("model", "kimi-k2"),
                                                              ("route", "kimi-k2:p/u")))] == 3
    assert s[("smartoken_reservations_in_flight", ())] == 2
    assert s[("smartoken_ledger_pending_records", ())] == 5
    assert s[("smartoken_route_breaker_state", (("route", "r1"),))] == 2
    assert Metrics().registry is not m.registry  # no process-global registry


# ------------------------------------------------------------------ lifecycle


def test_sigterm_marks_unready_at_once_and_exits_after_the_delay() -> None:
    state = SimpleNamespace(ready=True)
    inner = SimpleNamespace(state=SimpleNamespace(smartoken=state))
    app = SimpleNamespace(app=SimpleNamespace(app=inner))  # wrapped twice, like the gateway
    assert mark_unready(app) and state.ready is False
    state.ready = True
    server = GracefulServer(uvicorn.Config(app), drain_delay=30)
    server.config.loaded = True
    server.config.loaded_app = app
    server.handle_exit(15, None)
    assert state.ready is False and not server.should_exit  # still serving during the delay
    server.handle_exit(15, None)
    assert not server.should_exit  # a repeated SIGTERM does not cut the delay short
    server.handle_exit(2, None)
    assert server.should_exit  # Ctrl+C does
    quick = GracefulServer(uvicorn.Config(app), drain_delay=0)
    quick.config.loaded, quick.config.loaded_app = True, app
    quick.handle_exit(15, None)
    assert quick.should_exit
