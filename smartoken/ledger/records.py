"""The usage record: one per relayed request, written by the batched ledger writer."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

# Status of a usage record.
OK = "ok"  # the upstream answered in full
PARTIAL = "partial"  # the stream broke after bytes reached the client; delivered part billed
CLIENT_CLOSED = "client_closed"  # the client went away; delivered part billed
UPSTREAM_ERROR = "upstream_error"  # every route failed before any byte; nothing billed


@dataclass(slots=True)
class UsageRecord:
    id: str
    created_at: datetime
    account_id: int
    key_id: int
    requested_model: str
    model: str
    day: str
    month: str
    stream: bool = False
    route: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    status: str = OK
    http_status: int = 200
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    usage_estimated: bool = False
    latency_ms: int = 0
    ttft_ms: int | None = None
    cost_micro: int = 0
    attempts: str | None = None  # JSON list of attempts
    error: str | None = None
    cache_write_tokens: int = 0  # a column added by migration 0012: last, as in the table
    protocol: str = "chat"  # the client protocol (migration 0016): chat, embeddings, messages...
    extra: dict[str, Any] = field(default_factory=dict)


ROW_FIELDS = tuple(f.name for f in fields(UsageRecord) if f.name != "extra")
