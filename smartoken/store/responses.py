"""Stored Responses API answers: saved when ``store`` is not false, read back for
``previous_response_id`` and ``GET /v1/responses/{id}``, deleted by ``DELETE``. Rows belong to
one account (another account's id reads as not found) and expire after the retention period;
expired rows are purged as new ones are saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.store.repo import now
from smartoken.store.schema import stored_responses as t

JSON = dict[str, Any]
PURGE_BATCH = 500


@dataclass(frozen=True, slots=True)
class Stored:
    body: JSON  # the response object
    history: list[JSON]  # input items before its output

    @property
    def conversation(self) -> list[JSON]:
        """What a follow-up with ``previous_response_id`` continues: history and output."""
        return [*self.history, *(self.body.get("output") or [])]


async def save(engine: AsyncEngine, account_id: int, key_id: int, body: JSON,
               history: list[JSON], retention: timedelta) -> None:
    at = now()
    async with engine.begin() as conn:
        old = select(t.c.id).where(t.c.expires_at <= at).limit(PURGE_BATCH).scalar_subquery()
        await conn.execute(delete(t).where(t.c.id.in_(old)))
        await conn.execute(insert(t).values(
            id=body["id"], account_id=account_id, key_id=key_id,
            body=orjson.dumps(body).decode(), history=orjson.dumps(history).decode(),
            created_at=at, expires_at=at + retention))


async def get(engine: AsyncEngine, account_id: int, response_id: str) -> Stored | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(t.c.body, t.c.history).where(
            t.c.id == response_id, t.c.account_id == account_id,
            t.c.expires_at > now()))).first()
    if row is None:
        return None
    return Stored(orjson.loads(row[0]), orjson.loads(row[1]))


async def remove(engine: AsyncEngine, account_id: int, response_id: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(delete(t).where(t.c.id == response_id,
                                                    t.c.account_id == account_id))
    return bool(result.rowcount)
