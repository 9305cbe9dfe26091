"""The admins' platform dashboard: spend, requests and tokens per account, per model and per
route over the last 30 days (every account)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response

from smartoken.console.http import Ctx
from smartoken.store import repo
from smartoken.store.schema import usage_records

DAYS = 30


async def spend_by(engine: AsyncEngine, column: str, since_day: str) -> list[dict[str, Any]]:
    u = usage_records.c
    col = getattr(u, column)
    cost = func.coalesce(func.sum(u.cost_micro), 0)
    q = (select(col.label("name"), func.count().label("requests"), cost.label("cost_micro"),
                func.coalesce(func.sum(u.prompt_tokens + u.completion_tokens), 0)
                .label("tokens"))
         .where(u.day >= since_day).group_by(col).order_by(cost.desc()).limit(100))
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(q)).mappings().all()]


async def platform_page(ctx: Ctx) -> Response:
    engine = ctx.state.engine
    _, day, _ = ctx.state.windows.now()
    since = (date.fromisoformat(day) - timedelta(days=DAYS - 1)).isoformat()
    names = {int(a["id"]): a["name"] for a in await repo.list_accounts(engine)}
    accounts = await spend_by(engine, "account_id", since)
    for a in accounts:
        a["label"] = names.get(int(a["name"]), str(a["name"]))
    return ctx.render("admin_platform.html", since=since,
                      accounts=accounts, models=await spend_by(engine, "requested_model", since),
                      routes=await spend_by(engine, "route", since),
                      total=sum(int(a["cost_micro"]) for a in accounts))
