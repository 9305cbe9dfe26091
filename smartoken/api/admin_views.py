"""How accounts, keys, wallet transactions and usage records look in the admin API: JSON
objects with money as exact USD strings, times as ISO 8601 UTC, and usage as CSV."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from smartoken.money import format_usd
from smartoken.state import AppState
from smartoken.store import repo


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _usd(micro: int | None) -> str | None:
    return None if micro is None else format_usd(micro)


def page(data: list[Any], limit: int, offset: int) -> dict[str, Any]:
    """A list response; ``data`` was fetched with ``limit + 1`` rows to tell ``has_more``."""
    return {"object": "list", "data": data[:limit], "has_more": len(data) > limit,
            "limit": limit, "offset": offset}


async def wallet_view(state: AppState, account_id: int, recorded: int) -> dict[str, Any]:
    """The wallet as the gateway sees it now: the recorded balance, plus debits settled but not
    yet written and money reserved by requests in flight."""
    live = await state.reserver.snapshot(account_id)
    balance, reserved = live if live is not None else (recorded, 0)
    return {"object": "wallet", "account_id": account_id, "balance": format_usd(balance),
            "reserved": format_usd(reserved), "available": format_usd(balance - reserved),
            "recorded_balance": format_usd(recorded), "currency": "USD"}


async def account_view(state: AppState, row: dict[str, Any]) -> dict[str, Any]:
    return {"object": "account", "id": row["id"], "name": row["name"], "role": row["role"],
            "created_at": iso(row["created_at"]),
            "disabled": row.get("disabled_at") is not None,
            "wallet": await wallet_view(state, int(row["id"]), int(row["balance_micro"]))}


def key_status(row: dict[str, Any]) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    exp = row["expires_at"]
    if exp is not None:
        if exp.tzinfo is None:
            exp = exp.replace(tzinfo=UTC)
        if exp.timestamp() <= time.time():
            return "expired"
    return "active"


async def key_view(state: AppState, row: dict[str, Any]) -> dict[str, Any]:
    _, day, month = state.windows.now()
    live = await state.reserver.key_snapshot(int(row["id"]), day, month)
    if live is None:
        spent_day, spent_month = await repo.key_spend(state.engine, int(row["id"]), day, month)
        reserved = 0
    else:
        spent_day, spent_month, reserved = live
    fams = row["families"]
    return {
        "object": "api_key", "id": row["id"], "account_id": row["account_id"],
        "name": row["name"], "prefix": row["prefix"],
        "families": orjson.loads(fams) if fams else None,
        "daily_budget": _usd(row["daily_budget_micro"]),
        "monthly_budget": _usd(row["monthly_budget_micro"]),
        "rpm": row["rpm"], "tpm": row["tpm"], "admin": bool(row.get("admin", False)),
        "expires_at": iso(row["expires_at"]), "revoked_at": iso(row["revoked_at"]),
        "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
        "status": key_status(row),
        "spend": {"day": day, "month": month, "daily": format_usd(spent_day),
                  "monthly": format_usd(spent_month), "reserved": format_usd(reserved)},
    }


def transaction_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"object": "wallet.transaction", "id": row["id"], "account_id": row["account_id"],
            "kind": row["kind"], "amount": format_usd(int(row["amount_micro"])),
            "request_id": row["request_id"], "actor": row["actor"], "reason": row["reason"],
            "created_at": iso(row["created_at"])}


USAGE_FIELDS = ("id", "created_at", "account_id", "key_id", "requested_model", "model",
                "provider", "route", "upstream_model", "status", "http_status", "stream",
                "prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens",
                "reasoning_tokens", "usage_estimated", "latency_ms", "ttft_ms", "cost", "day",
                "month", "error", "protocol")


def usage_view(row: dict[str, Any]) -> dict[str, Any]:
    out = {f: row.get(f) for f in USAGE_FIELDS}
    out["created_at"] = iso(row["created_at"])
    out["cost"] = format_usd(int(row["cost_micro"]))
    out["stream"] = bool(row["stream"])
    out["usage_estimated"] = bool(row["usage_estimated"])
    return {"object": "usage.record", **out}


def usage_csv(rows: list[dict[str, Any]], header: bool = True) -> str:
    """Usage records as CSV (the admin, account and console exports: one format)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if header:
        writer.writerow(USAGE_FIELDS)
    for row in rows:
        view = usage_view(row)
        writer.writerow(["" if view[f] is None else _csv_cell(view[f]) for f in USAGE_FIELDS])
    return buf.getvalue()


def _csv_cell(value: Any) -> Any:
    # Spreadsheet formula injection: a text cell may not start with = + - @.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
