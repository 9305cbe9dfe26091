"""Queries over the ``files`` table. Every function takes a connection or the engine."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from smartoken.store.schema import files


def _utc(dt: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FileRow:
    seq: int
    id: str
    account_id: int
    key_id: int | None
    filename: str
    purpose: str
    bytes: int
    sha256: str
    media_type: str
    kind: str
    text_sha256: str | None
    text_chars: int | None
    status: str
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> FileRow:
        return cls(**{k: row[k] for k in cls.__slots__})  # type: ignore[attr-defined]

    def to_api(self) -> dict[str, Any]:
        """The OpenAI ``file`` object (plus ``media_type``/``text_chars``, which SDKs ignore)."""
        return {
            "id": self.id, "object": "file", "bytes": self.bytes,
            "created_at": int(_utc(self.created_at).timestamp()), "expires_at": None,
            "filename": self.filename, "purpose": self.purpose, "status": self.status,
            "status_details": None, "media_type": self.media_type,
            "text_chars": self.text_chars,
        }


async def insert_file(conn: AsyncConnection, **values: Any) -> int:
    result = await conn.execute(insert(files).values(**values))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def usage(conn: AsyncConnection, account_id: int) -> tuple[int, int]:
    """(file count, total bytes) of an account."""
    row = (await conn.execute(
        select(func.count(), func.coalesce(func.sum(files.c.bytes), 0))
        .where(files.c.account_id == account_id))).one()
    return int(row[0]), int(row[1])


async def get(engine: AsyncEngine | AsyncConnection, account_id: int | None,
              file_id: str) -> FileRow | None:
    """A file by id; ``account_id=None`` (operators) finds any account's file."""
    q = select(files).where(files.c.id == file_id)
    if account_id is not None:
        q = q.where(files.c.account_id == account_id)
    if isinstance(engine, AsyncConnection):
        row = (await engine.execute(q)).mappings().first()
    else:
        async with engine.connect() as conn:
            row = (await conn.execute(q)).mappings().first()
    return FileRow.of(row) if row else None


async def get_many(engine: AsyncEngine, account_id: int, ids: Iterable[str]) -> dict[str,
                                                                                     FileRow]:
    wanted = sorted(set(ids))
    async with engine.connect() as conn:
        rows = (await conn.execute(select(files).where(
            files.c.account_id == account_id, files.c.id.in_(wanted)))).mappings().all()
    return {r["id"]: FileRow.of(r) for r in rows}


async def page(engine: AsyncEngine, account_id: int | None, *, purpose: str | None = None,
               after: str | None = None, limit: int = 10000,
               order: str = "desc") -> tuple[list[FileRow], bool]:
    """One page in ``seq`` order and whether more follow. ``after`` is a file id cursor."""
    q = select(files)
    if account_id is not None:
        q = q.where(files.c.account_id == account_id)
    if purpose is not None:
        q = q.where(files.c.purpose == purpose)
    async with engine.connect() as conn:
        if after is not None:
            anchor_q = select(files.c.seq).where(files.c.id == after)
            if account_id is not None:
                anchor_q = anchor_q.where(files.c.account_id == account_id)
            anchor = await conn.scalar(anchor_q)
            if anchor is not None:
                q = q.where(files.c.seq < anchor if order == "desc" else files.c.seq > anchor)
        q = q.order_by(files.c.seq.desc() if order == "desc" else files.c.seq.asc())
        rows = (await conn.execute(q.limit(limit + 1))).mappings().all()
    out = [FileRow.of(r) for r in rows]
    return out[:limit], len(out) > limit


async def delete_file(conn: AsyncConnection, seq: int) -> bool:
    result = await conn.execute(delete(files).where(files.c.seq == seq))
    return bool(result.rowcount)


async def blob_in_use(conn: AsyncConnection, sha256: str) -> bool:
    n = await conn.scalar(select(func.count()).where(
        or_(files.c.sha256 == sha256, files.c.text_sha256 == sha256)))
    return bool(n)
