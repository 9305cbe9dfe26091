"""Monthly statements: an account's ledger for one calendar month in the gateway's time zone.

Every figure is a sum of ``wallet_transactions`` rows, so a statement equals the ledger by
construction: the opening balance is the sum of the transactions before the month's first
instant, the closing balance the opening plus the month's transactions, and so the closing of
one month is the opening of the next. A transaction belongs to the month its ``created_at``
falls in, read in ``settings.tz`` (midnight on the 1st, local time, to the next 1st).

Lines: credits by source (top-ups, redemption codes, trial credit, admin credits), usage
(the debits), refunds and adjustments; and the usage per model, from the debits joined to their
usage records (so the per-model costs add up to the usage line exactly).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.errors import InvalidRequest
from smartoken.money import format_usd
from smartoken.store.schema import usage_records, wallet_transactions

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# Statement lines, in the order they are shown. Credits are told apart by their request id:
# ``redeem:`` (codes), ``trial:`` (sign-up trial), any other request id is a payment (a top-up
# credited by a provider's webhook); a credit with no request id was made by an admin.
LINES = ("credit_topup", "credit_code", "credit_trial", "credit_admin", "usage", "refund",
         "adjustment")
MAX_LISTED = 10_000  # non-usage transactions listed on one statement


def parse_month(text: str) -> tuple[int, int]:
    m = MONTH.match(text)
    if m is None or not 2000 <= int(m.group(1)) <= 9998:
        raise InvalidRequest("A statement month is written YYYY-MM, e.g. 2026-11.",
                             param="month", code="invalid_value")
    return int(m.group(1)), int(m.group(2))


def month_bounds(year: int, month: int, tz: tzinfo) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, in UTC."""
    nxt = (year + 1, 1) if month == 12 else (year, month + 1)
    start = datetime(year, month, 1, tzinfo=tz).astimezone(UTC)
    end = datetime(nxt[0], nxt[1], 1, tzinfo=tz).astimezone(UTC)
    return start, end


def line_of(kind: str, request_id: str | None, origin: str = "") -> str:
    if kind == "debit":
        return "usage"
    if kind in ("refund", "adjustment"):
        return kind
    prefix = (request_id or "").split(":", 1)[0]
    if prefix == "redeem":
        return "credit_code"
    if prefix == "trial" or origin == "trial":
        return "credit_trial"
    return "credit_topup" if request_id else "credit_admin"


@dataclass(slots=True)
class ModelUsage:
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_micro: int


@dataclass(slots=True)
class Statement:
    account_id: int
    account_name: str
    month: str
    timezone: str
    start: datetime
    end: datetime
    opening_micro: int
    totals: dict[str, int] = field(default_factory=dict)  # line -> micro-USD (signed)
    counts: dict[str, int] = field(default_factory=dict)  # line -> transactions
    models: list[ModelUsage] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)  # non-usage transactions

    @property
    def closing_micro(self) -> int:
        return self.opening_micro + sum(self.totals.values())

    @property
    def credits_micro(self) -> int:
        return sum(v for k, v in self.totals.items() if k.startswith("credit_"))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def build(engine: AsyncEngine, account: dict[str, Any], month: str,
                tz: tzinfo) -> Statement:
    year, mon = parse_month(month)
    start, end = month_bounds(year, mon, tz)
    account_id = int(account["id"])
    wt = wallet_transactions
    mine = wt.c.account_id == account_id
    in_month = (wt.c.created_at >= start, wt.c.created_at < end)
    async with engine.connect() as conn:
        opening = await conn.scalar(select(func.coalesce(func.sum(wt.c.amount_micro), 0))
                                    .where(mine, wt.c.created_at < start))
        debit = (await conn.execute(
            select(func.count(), func.coalesce(func.sum(wt.c.amount_micro), 0))
            .where(mine, *in_month, wt.c.kind == "debit"))).one()
        others = (await conn.execute(
            select(wt.c.id, wt.c.kind, wt.c.amount_micro, wt.c.request_id, wt.c.actor,
                   wt.c.reason, wt.c.origin, wt.c.created_at)
            .where(mine, *in_month, wt.c.kind != "debit").order_by(wt.c.id))).mappings().all()
        u = usage_records
        per_model = (await conn.execute(
            select(u.c.model, func.count(), func.coalesce(func.sum(u.c.prompt_tokens), 0),
                   func.coalesce(func.sum(u.c.completion_tokens), 0),
                   func.coalesce(func.sum(wt.c.amount_micro), 0))
            .select_from(wt.outerjoin(u, u.c.id == wt.c.request_id))
            .where(mine, *in_month, wt.c.kind == "debit")
            .group_by(u.c.model).order_by(func.sum(wt.c.amount_micro)))).all()
    st = Statement(account_id, str(account["name"]), month, str(tz), start, end,
                   int(opening or 0), totals=dict.fromkeys(LINES, 0),
                   counts=dict.fromkeys(LINES, 0))
    st.totals["usage"], st.counts["usage"] = int(debit[1]), int(debit[0])
    for row in others:
        line = line_of(str(row["kind"]), row["request_id"], str(row["origin"] or ""))
        st.totals[line] += int(row["amount_micro"])
        st.counts[line] += 1
        if len(st.entries) < MAX_LISTED:
            st.entries.append({**row, "line": line, "created_at": _utc(row["created_at"])})
    st.models = [ModelUsage(str(m) if m is not None else "(unrecorded)", int(n), int(p),
                            int(c), -int(cost)) for m, n, p, c, cost in per_model]
    return st


def months_of(created_at: datetime, now: datetime, tz: tzinfo) -> list[str]:
    """Every month from the account's creation to now, newest first (at most ten years)."""
    first, last = _utc(created_at).astimezone(tz), now.astimezone(tz)
    out: list[str] = []
    y, m = last.year, last.month
    while (y, m) >= (first.year, first.month) and len(out) < 120:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out


def as_json(st: Statement) -> dict[str, Any]:
    return {
        "object": "statement", "account_id": st.account_id, "account": st.account_name,
        "month": st.month, "timezone": st.timezone, "period_start": st.start.isoformat(),
        "period_end": st.end.isoformat(), "currency": "USD",
        "opening_balance": format_usd(st.opening_micro),
        "closing_balance": format_usd(st.closing_micro),
        "lines": [{"line": k, "transactions": st.counts[k], "amount": format_usd(v)}
                  for k, v in st.totals.items()],
        "models": [{"model": m.model, "requests": m.requests,
                    "prompt_tokens": m.prompt_tokens,
                    "completion_tokens": m.completion_tokens,
                    "cost": format_usd(m.cost_micro)} for m in st.models],
    }


def _cell(value: str) -> str:
    """A text cell that a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def as_csv(st: Statement, tz: tzinfo) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["section", "date", "item", "detail", "count", "amount_usd", "prompt_tokens",
                "completion_tokens"])
    w.writerow(["account", "", _cell(st.account_name), str(st.account_id), "", "", "", ""])
    w.writerow(["period", st.start.astimezone(tz).date().isoformat(), st.month, st.timezone,
                "", "", "", ""])
    w.writerow(["summary", "", "opening_balance", "", "", format_usd(st.opening_micro), "",
                ""])
    for line in LINES:
        w.writerow(["summary", "", line, "", st.counts[line], format_usd(st.totals[line]),
                    "", ""])
    w.writerow(["summary", "", "closing_balance", "", "", format_usd(st.closing_micro), "",
                ""])
    for m in st.models:
        w.writerow(["model", "", _cell(m.model), "", m.requests, format_usd(m.cost_micro),
                    m.prompt_tokens, m.completion_tokens])
    for e in st.entries:
        w.writerow(["transaction", e["created_at"].astimezone(tz).isoformat(), e["line"],
                    _cell(str(e["reason"] or "")), 1, format_usd(int(e["amount_micro"])),
                    "", ""])
    return out.getvalue()
