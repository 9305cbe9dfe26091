"""Dashboard, usage log (filters, paging, CSV) and wallet transactions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.responses import Response, StreamingResponse

from smartoken.alerts import store as alert_store
from smartoken.api import admin_views
from smartoken.api.http import JSONResponse
from smartoken.console import store
from smartoken.console.alerts import recent as recent_alerts
from smartoken.console.http import Ctx
from smartoken.errors import InvalidRequest, NotFound
from smartoken.i18n.message import N_
from smartoken.ledger import records, refusals
from smartoken.money import format_usd
from smartoken.payments import ledger
from smartoken.store import repo

PAGE_SIZE = 50
RECORD_WAIT_S = 3.0
CHART_DAYS = 30
DASHBOARD_ALERTS = 5  # the newest alerts, shown above the charts
CSV_MAX_ROWS = 100_000
STATUSES = (records.OK, records.PARTIAL, records.CLIENT_CLOSED, records.UPSTREAM_ERROR,
            "rejected")
# The query's fields by the labels the usage page gives them (for its error messages).
FIELDS = {"from": N_("Start date"), "to": N_("End date"), "key": N_("Key"),
          "account": N_("Account"), "page": N_("Page")}

def _pct(spent: int, limit: int | None) -> int | None:
    if not limit:
        return None
    return min(100, spent * 100 // limit)


async def dashboard(ctx: Ctx) -> Response:
    state, user = ctx.state, ctx.user
    engine = state.engine
    _, day, month = state.windows.now()
    today = date.fromisoformat(day)
    first = (today - timedelta(days=CHART_DAYS - 1)).isoformat()
    balance = await repo.wallet_balance(engine, user.id)
    keys = [k for k in await repo.list_keys(engine, user.id) if k["revoked_at"] is None]
    spend = await store.key_spend_table(engine, user.id, day, month)
    key_rows = []
    for k in keys:
        s = spend.get(int(k["id"]), {"day": 0, "month": 0, "total": 0, "requests": 0})
        key_rows.append({**k, "spend": s,
                         "day_pct": _pct(s["day"], k["daily_budget_micro"]),
                         "month_pct": _pct(s["month"], k["monthly_budget_micro"])})
    by_day = {r["day"]: r for r in await store.spend_by_day(engine, user.id, first)}
    days = [(today - timedelta(days=i)).isoformat() for i in range(CHART_DAYS - 1, -1, -1)]
    zero = {"cost_micro": 0, "prompt_tokens": 0, "completion_tokens": 0, "requests": 0}
    series = [by_day.get(d, zero) for d in days]
    by_model = await store.spend_by_model(engine, user.id, first)
    chart = {
        "days": [d[5:] for d in days],
        "spend_micro": [int(r["cost_micro"]) for r in series],
        "prompt_tokens": [int(r["prompt_tokens"]) for r in series],
        "completion_tokens": [int(r["completion_tokens"]) for r in series],
        "models": [r["model"] for r in by_model],
        "model_spend_micro": [int(r["cost_micro"]) for r in by_model],
        "model_tokens": [int(r["tokens"]) for r in by_model],
    }
    month_total = sum(s["month"] for s in spend.values())
    month_requests = sum(s["month_requests"] for s in spend.values())
    today_row = by_day.get(day, zero)
    alerts = recent_alerts(await alert_store.history(engine, user.id, DASHBOARD_ALERTS))
    return ctx.render(
        "dashboard.html", balance=balance, keys=key_rows, day=day, month=month, alerts=alerts,
        today=today_row, month_total=month_total, month_requests=month_requests,
        by_model=by_model,
        chart_json=orjson.dumps(chart).decode().replace("<", "\\u003c"),
        tz=state.settings.timezone, requests_30d=sum(int(r["requests"]) for r in series))


# ---------------------------------------------------------------- usage


def _day_start(value: str, ctx: Ctx, field: str) -> datetime | None:
    if not value:
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(N_("%(field)s must be a date (YYYY-MM-DD).",
                                field=FIELDS.get(field, field)),
                             param=field) from None
    # Midnight in the gateway's time zone, as UTC: the ledger stores UTC times.
    return datetime(d.year, d.month, d.day, tzinfo=ctx.state.settings.tz).astimezone(UTC)


def _int_param(value: str | None, field: str) -> int | None:
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 10) or int(value) >= 2**31:
        raise InvalidRequest(N_("%(field)s must be a number.", field=FIELDS.get(field, field)),
                             param=field)
    return int(value)


def usage_filter(ctx: Ctx) -> tuple[repo.UsageFilter, dict[str, str]]:
    """The usage filter of the query string, scoped to the user's account (an admin may pick
    another account or all)."""
    q = ctx.request.query_params
    params = {k: q.get(k, "") for k in ("key", "model", "status", "from", "to", "account")}
    account: int | None = ctx.user.id
    if ctx.user.is_admin and params["account"]:
        account = None if params["account"] == "all" else _int_param(params["account"],
                                                                      "account")
    until = _day_start(params["to"], ctx, "to")
    f = repo.UsageFilter(
        account_id=account, key_id=_int_param(params["key"], "key"),
        model=params["model"] or None,
        status=params["status"] if params["status"] in STATUSES else None,
        since=_day_start(params["from"], ctx, "from"),
        until=until + timedelta(days=1) if until else None)
    return f, params


async def usage(ctx: Ctx) -> Response:
    engine = ctx.state.engine
    f, params = usage_filter(ctx)
    page = max(1, _int_param(ctx.request.query_params.get("page"), "page") or 1)
    f.limit, f.offset = PAGE_SIZE, (page - 1) * PAGE_SIZE
    rows = await repo.query_usage(engine, f)
    totals = await repo.usage_totals(engine, f)
    keys = await repo.list_keys(engine, None if ctx.user.is_admin else ctx.user.id)
    key_names = {int(k["id"]): k for k in keys}
    pages = max(1, (totals["requests"] + PAGE_SIZE - 1) // PAGE_SIZE)
    query = urlencode({k: v for k, v in params.items() if v})
    accounts = await repo.list_accounts(engine) if ctx.user.is_admin else []
    refused = await refusals.recent(engine, f.account_id) if page == 1 else []
    return ctx.render(
        "usage.html", rows=rows, totals=totals, params=params, page=page, pages=pages,
        query=query, keys=[k for k in keys if ctx.user.is_admin or
                           k["account_id"] == ctx.user.id],
        key_names=key_names, models=sorted(ctx.state.catalog.models), statuses=STATUSES,
        accounts=accounts, refused=refused)


async def usage_csv(ctx: Ctx) -> Response:
    engine = ctx.state.engine
    f, _ = usage_filter(ctx)

    async def body() -> AsyncIterator[str]:
        # The admin API's format: same columns and order, times in UTC with their zone.
        f.limit, f.offset = 1000, 0
        while f.offset < CSV_MAX_ROWS:
            rows = await repo.query_usage(engine, f)
            yield admin_views.usage_csv(rows, header=f.offset == 0)
            if len(rows) < f.limit:
                break
            f.offset += f.limit

    stamp = datetime.now(ctx.state.settings.tz).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="smartoken-usage-{stamp}.csv"'})


async def usage_record(ctx: Ctx) -> Response:
    """One usage record of the user's account, as JSON (the playground reads its cost).

    A record settled in this process but not written yet is read from the ledger writer's
    queue; otherwise the answer waits (up to ``RECORD_WAIT_S``) for the record to be written,
    so the browser asks once per answer instead of polling while the ledger catches up."""
    state = ctx.state
    rid = ctx.request.path_params["request_id"]
    account = None if ctx.user.is_admin else ctx.user.id
    deadline = time.monotonic() + RECORD_WAIT_S
    while True:
        r = await store.usage_by_id(state.engine, rid, account)
        if r is None:
            queued = state.ledger.queued(rid)
            if queued is not None and (account is None or queued.account_id == account):
                r = {f: getattr(queued, f) for f in records.ROW_FIELDS}
        if r is not None or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.05)
    if r is None:
        return JSONResponse({"found": False}, status_code=404)
    return JSONResponse({"found": True, "id": r["id"], "status": r["status"],
                         "prompt_tokens": r["prompt_tokens"],
                         "completion_tokens": r["completion_tokens"],
                         "reasoning_tokens": r["reasoning_tokens"],
                         "usage_estimated": bool(r["usage_estimated"]),
                         "latency_ms": r["latency_ms"], "ttft_ms": r["ttft_ms"],
                         "cost_micro": r["cost_micro"], "cost_usd": format_usd(r["cost_micro"])})


async def usage_detail(ctx: Ctx) -> Response:
    """One request: the attempt chain (each route tried, its error, when it ended), tokens,
    timings, cost and protocol."""
    rid = ctx.request.path_params["request_id"]
    r = await store.usage_by_id(ctx.state.engine, rid, None if ctx.user.is_admin else ctx.user.id)
    if r is None:
        raise NotFound(N_("No request '%(id)s' in your usage log.", id=rid), code="not_found")
    attempts: list[dict[str, Any]] = []
    previous = 0
    for a in orjson.loads(r["attempts"]) if r.get("attempts") else []:
        at = a.get("at_ms")
        ms = at - previous if isinstance(at, int) else None
        previous = at if isinstance(at, int) else previous
        attempts.append({**a, "ms": ms})
    key = await repo.get_key(ctx.state.engine, int(r["key_id"]))
    key_name = (key["name"] or key["prefix"]) if key else str(r["key_id"])
    return ctx.render("usage_detail.html", r=r, attempts=attempts, key_name=key_name)


# ---------------------------------------------------------------- wallet


async def wallet(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    engine = ctx.state.engine
    page = max(1, _int_param(ctx.request.query_params.get("page"), "page") or 1)
    txns = await repo.list_transactions(engine, ctx.user.id, PAGE_SIZE + 1,
                                        (page - 1) * PAGE_SIZE)
    return ctx.render("wallet.html", status,
                      balance=await repo.wallet_balance(engine, ctx.user.id),
                      txns=txns[:PAGE_SIZE], page=page, more=len(txns) > PAGE_SIZE,
                      receipts=await ledger.account_receipts(engine, ctx.user.id, 20), **extra)
