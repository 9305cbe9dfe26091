"""Catalog documents imported at run time (``smartoken catalog import``, ``PUT /admin/catalog``).

Each import is a new row; the newest one is laid over the built-in catalog by every process
(``live_providers.follow`` polls ``version`` each second). Older rows stay as the history of
what was in force when.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.store.repo import now
from smartoken.store.schema import catalog_documents


async def version(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.coalesce(func.max(catalog_documents.c.id), 0)))
                   or 0)


async def latest(engine: AsyncEngine) -> tuple[int, dict[str, Any] | None]:
    """The newest imported document and its id; (0, None) when nothing was imported."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(catalog_documents.c.id, catalog_documents.c.body)
                                  .order_by(catalog_documents.c.id.desc()).limit(1))).first()
    if row is None:
        return 0, None
    doc = orjson.loads(row[1])
    return int(row[0]), doc if isinstance(doc, dict) else None


async def save(engine: AsyncEngine, doc: dict[str, Any], actor: str, note: str = "") -> int:
    async with engine.begin() as conn:
        result = await conn.execute(insert(catalog_documents).values(
            body=orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS).decode(), actor=actor[:100],
            note=note[:500], created_at=now()))
    return int(result.inserted_primary_key[0])  # type: ignore[index]
