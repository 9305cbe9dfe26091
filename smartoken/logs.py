"""Structured logs: one JSON object per line on standard error, secrets redacted.

``configure_logging(level, secrets)`` installs the JSON handler on the root logger and routes
uvicorn's own loggers through it. Every line passes through a ``Redactor`` as a safety net:
SmarToken keys (``sk-st-…``), ``Bearer`` credentials, ``key=value`` pairs whose name says
secret, and the literal secrets the gateway knows (provider keys, the master key, the
secrets-at-rest keys) are replaced by ``***``. Code should not log secrets in the first place;
the redactor catches what slips through.

``log_request(record, key_prefix)`` writes the one line per request (logger
``smartoken.access``, level INFO).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

import orjson

from smartoken.config import Settings
from smartoken.ledger.records import UsageRecord
from smartoken.money import format_usd

ACCESS = "smartoken.access"
MASK = "***"
MIN_LITERAL = 6  # shorter "secrets" would redact ordinary words
access_log = logging.getLogger(ACCESS)
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime",
                                                              "color_message"}
# (trigger words, pattern, replacement): a pattern runs only when one of its trigger words is
# in the lower-cased text, which keeps ordinary lines at a few microseconds.
_PATTERNS = (
    (("sk-st-",), re.compile(r"sk-st-[A-Za-z0-9_\-]{7,}"), "sk-st-" + MASK),  # keeps prefixes
    # A credential, not our own placeholders ("Bearer <key>", "Bearer sk-st-...").
    (("bearer", "basic"), re.compile(r"(?i)\b(bearer|basic)\s+(?!<|[^\s\"',;}]*\.\.\.)"
                                     r"[^\s\"',;}]+"), r"\1 " + MASK),
    (("api_key", "api-key", "apikey", "master_key", "master-key", "masterkey", "authorization",
      "passw", "secret", "access_token", "access-token", "accesstoken"),
     re.compile(r"(?i)((?:api[_-]?key|authorization|password|passwd|secret|master[_-]?key|"
                r"access[_-]?token|x-api-key)[\"']?\s*[:=]\s*[\"']?)"
                r"(?!\*\*\*|(?:bearer|basic)\s)[^\s\"',;}&]+"),  # the scheme: the pattern above
     r"\1" + MASK),
    (("@",), re.compile(r"(?i)(://[^:/@\s]+:)[^@/\s]+@"), r"\1" + MASK + "@"),
)


def _any_of(words: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(w) for w in words))


_ANY_TRIGGER = _any_of(t for triggers, _, _ in _PATTERNS for t in triggers)
_TRIGGERED = tuple((_any_of(triggers), pattern, repl) for triggers, pattern, repl in _PATTERNS)


class Redactor:
    """Replaces secrets in text. Literal secrets can be added at run time (stored providers)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._literals: set[str] = set()
        self._literal_re: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        new = {s for s in secrets if s and len(s) >= MIN_LITERAL} - self._literals
        if not new:
            return
        self._literals |= new
        ordered = sorted(self._literals, key=len, reverse=True)
        self._literal_re = re.compile("|".join(re.escape(s) for s in ordered))

    def __call__(self, text: str) -> str:
        if self._literal_re is not None and self._literal_re.search(text):
            text = self._literal_re.sub(MASK, text)
        low = text.lower()
        if _ANY_TRIGGER.search(low):
            for trigger, pattern, repl in _TRIGGERED:
                if trigger.search(low):
                    text = pattern.sub(repl, text)
        return text


_PATTERNS_ONLY = Redactor()


class JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = record.__dict__.get("fields")
        if type(fields) is dict:  # the access lines: their fields in one dict (log_request)
            out.update(fields)
        else:
            for k, v in record.__dict__.items():
                if k not in _STANDARD and not k.startswith("_"):
                    out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        line = orjson.dumps(out, default=str).decode()
        return self.redactor(line)


class _AccessLines:
    """The access lines (one per request, one per refusal) written straight to the handler
    ``configure_logging`` installed, in the formatter's shape and through its redactor, without
    a ``LogRecord`` and the logging module's dispatch: ~15 µs less CPU per request on this
    machine class (``bench/RESULTS.md``). Used only while that handler is the root's only one
    and the access logger has none of its own and propagates; otherwise (a test capturing
    logs, a host application's logging) the lines go through ``logging`` as any other."""

    def __init__(self, handler: logging.StreamHandler[Any], formatter: JsonFormatter) -> None:
        self._handler, self._formatter = handler, formatter
        self._only = [handler]
        self._root = logging.getLogger()

    def usable(self) -> bool:
        return (self._root.handlers == self._only and not access_log.handlers
                and access_log.propagate)

    def write(self, msg: str, fields: dict[str, Any]) -> None:
        now = time.time()
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
               + f".{int(now * 1000) % 1000:03d}Z", "level": "info", "logger": ACCESS,
               "msg": msg, **fields}
        line = self._formatter.redactor(orjson.dumps(out, default=str).decode())
        h = self._handler
        h.acquire()
        try:
            h.stream.write(line + h.terminator)
            h.stream.flush()
        except Exception:  # as logging does: a failed write never fails the request
            h.handleError(logging.makeLogRecord({"msg": msg}))
        finally:
            h.release()


_access_lines: _AccessLines | None = None


def _access(msg: str, fields: dict[str, Any]) -> None:
    lines = _access_lines
    if lines is not None and lines.usable():
        lines.write(msg, fields)
    else:
        access_log.info(msg, extra={"fields": fields})


def secrets_of(settings: Settings) -> list[str | None]:
    """Every secret the settings hold: what the redactor must never let through."""
    out: list[str | None] = [settings.master_key, *settings.secret_keys,
                             *settings.payments.secrets()]
    if settings.smtp is not None:
        out.append(settings.smtp.password)
    for p in settings.providers.values():
        out.append(p.api_key)
        out.extend(k for k, _ in p.key_pool)
        out.extend(v for _, v in p.headers)
    return out


def configure_logging(level: str, secrets: Iterable[str | None] = ()) -> Redactor:
    """JSON lines on stderr for the whole process, uvicorn included. Returns the redactor."""
    redactor = Redactor(secrets)
    # The JSON lines never show the thread, process or calling source line: don't collect them
    # for every record (the logging HOWTO's "Optimization" switches; ~5 µs per access line).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    global _access_lines
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter(redactor)
    handler.setFormatter(formatter)
    _access_lines = _AccessLines(handler, formatter)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    root.setLevel(numeric if isinstance(numeric, int) else logging.INFO)
    for name in UVICORN_LOGGERS:
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
        lg.setLevel(logging.NOTSET)
    return redactor


def redact(text: str) -> str:
    """Redact ``text`` with the installed redactor (patterns only when none is installed)."""
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if isinstance(formatter, JsonFormatter):
            return formatter.redactor(text)
    return _PATTERNS_ONLY(text)


def protect(*secrets: str | None) -> None:
    """Teach the installed redactor more literal secrets (e.g. keys of stored providers)."""
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if isinstance(formatter, JsonFormatter):
            formatter.redactor.add(*secrets)


def log_request(rec: UsageRecord, key_prefix: str) -> None:
    """The one line per finished request. Skipped cheaply when INFO is off."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    _access("request", {
        "request_id": rec.id, "key": key_prefix, "key_id": rec.key_id,
        "account_id": rec.account_id, "model": rec.model, "requested_model": rec.requested_model,
        "route": rec.route, "status": rec.status, "http_status": rec.http_status,
        "stream": rec.stream, "prompt_tokens": rec.prompt_tokens,
        "completion_tokens": rec.completion_tokens, "usage_estimated": rec.usage_estimated,
        "cost_usd": format_usd(rec.cost_micro), "latency_ms": rec.latency_ms,
        "ttft_ms": rec.ttft_ms, "error": rec.error, "protocol": rec.protocol})


def log_refused(request_id: str | None, method: str, path: str, client: str | None,
                status: int, code: str | None) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    _access("refused", {"request_id": request_id, "method": method, "path": path,
                        "client": client, "http_status": status, "code": code})
