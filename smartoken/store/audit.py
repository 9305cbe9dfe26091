"""The audit log: one row per run-time configuration change (who, when, before, after).

Callers pass views without secrets (``StoredProvider.public()``); a value too large to keep
whole (a catalog document) is replaced by a note of its size.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.store.repo import now
from smartoken.store.schema import audit_log

MAX_VALUE = 64 * 1024


def _json(value: Any) -> str | None:
    if value is None:
        return None
    text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    if len(text) > MAX_VALUE:
        text = orjson.dumps({"truncated": True, "bytes": len(text)}).decode()
    return text


async def record(engine: AsyncEngine, actor: str, action: str, target: str,
                 before: Any, after: Any) -> None:
    """Record a change (right after it was made)."""
    async with engine.begin() as conn:
        await conn.execute(insert(audit_log).values(
            at=now(), actor=actor[:100], action=action[:64], target=target[:200],
            before=_json(before), after=_json(after)))


def _at(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


async def page(engine: AsyncEngine, limit: int, offset: int, target: str | None = None
               ) -> tuple[int, list[dict[str, Any]]]:
    """Newest first; the total count for the filter."""
    q = select(audit_log)
    count = select(func.count()).select_from(audit_log)
    if target is not None:
        q = q.where(audit_log.c.target == target)
        count = count.where(audit_log.c.target == target)
    async with engine.connect() as conn:
        total = int(await conn.scalar(count) or 0)
        rows = (await conn.execute(q.order_by(audit_log.c.id.desc()).limit(limit)
                                   .offset(offset))).mappings().all()
    return total, [{"id": r["id"], "at": _at(r["at"]),
                    "actor": r["actor"], "action": r["action"], "target": r["target"],
                    "before": orjson.loads(r["before"]) if r["before"] else None,
                    "after": orjson.loads(r["after"]) if r["after"] else None} for r in rows]
