"""The Files runtime on ``AppState``: blob store, extractor and limits, and the operations the
HTTP API, the chat expansion and the CLI share (create, delete, read text, read bytes).

Nothing is stored half-way. An upload is staged (hashed into a private temporary file),
checked (name, emptiness, type, extraction, account limits) and only then committed: the
metadata row and the blob renames happen inside one database transaction, so a refused upload
leaves neither a row nor a blob, and a reader never sees a row without its blob.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.config import FileLimits, Settings
from smartoken.errors import InvalidRequest, NotFound, PayloadTooLarge
from smartoken.files import records
from smartoken.files.detect import detect, safe_filename
from smartoken.files.extract import ExtractError, Extractor
from smartoken.files.records import FileRow
from smartoken.files.storage import BlobStore, BlobTooLarge, LocalBlobStore, Staged
from smartoken.i18n.message import N_

PURPOSES = ("file-extract", "assistants", "batch", "user_data")
HEAD = 8192


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.4g} MiB"


def file_not_found(file_id: str, param: str | None = None) -> NotFound:
    return NotFound(N_("No such File object: %(id)s", id=file_id), code="file_not_found",
                    param=param)


def too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file is larger than the limit of {limit} bytes ({_mb(limit)}) per file"
        f"{f'; it has at least {size} bytes' if size else ''}.", code="file_too_large",
        param="file")


def _read_head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(HEAD)


class Files:
    def __init__(self, limits: FileLimits, store: BlobStore, extractor: Extractor) -> None:
        self.limits, self.store, self.extractor = limits, store, extractor

    @classmethod
    def from_settings(cls, settings: Settings) -> Files:
        store = LocalBlobStore(settings.data_dir / "files").open()
        lim = settings.files
        return cls(lim, store, Extractor(lim.extract_workers, lim.extract_timeout))

    def close(self) -> None:
        self.extractor.close()

    # ------------------------------------------------------------------ create

    def check_purpose(self, purpose: object) -> str:
        if purpose is None or purpose == "":
            raise InvalidRequest("Missing required parameter: 'purpose'.", param="purpose",
                                 code="missing_required_parameter")
        if purpose not in PURPOSES:
            raise InvalidRequest(f"Invalid value for 'purpose': expected one of "
                                 f"{', '.join(PURPOSES)}; got {purpose!r}.", param="purpose",
                                 code="invalid_value")
        return str(purpose)

    async def _precheck(self, engine: AsyncEngine, account_id: int) -> None:
        async with engine.connect() as conn:
            count, _ = await records.usage(conn, account_id)
        if count >= self.limits.max_files:
            raise self._count_error()

    def _count_error(self) -> InvalidRequest:
        return InvalidRequest(f"This account already has the maximum of "
                              f"{self.limits.max_files} files; delete some first.",
                              code="file_count_limit_exceeded", param="file")

    async def create(self, engine: AsyncEngine, *, account_id: int, key_id: int | None,
                     filename: str | None, purpose: object, src: BinaryIO) -> FileRow:
        purpose = self.check_purpose(purpose)
        name = safe_filename(filename)
        await self._precheck(engine, account_id)
        try:
            staged = await asyncio.to_thread(self.store.stage, src, self.limits.max_file_bytes)
        except BlobTooLarge as exc:
            raise too_large(exc.size, self.limits.max_file_bytes) from None
        text_staged: Staged | None = None
        try:
            if staged.size == 0:
                raise InvalidRequest(f"The file '{name}' is empty.", param="file",
                                     code="empty_file")
            kind = detect(name, await asyncio.to_thread(_read_head, staged.path), purpose)
            try:
                text = await self.extractor.extract(staged.path, kind.kind,
                                                    self.limits.max_text_chars)
            except ExtractError as exc:
                raise InvalidRequest(f"'{name}': {exc.message}", param="file",
                                     code=exc.code) from None
            if text is not None:
                text_staged = await asyncio.to_thread(
                    self.store.stage_bytes, text.encode("utf-8", "replace"))
            values = dict(
                id="file-" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y"),
                account_id=account_id, key_id=key_id, filename=name, purpose=purpose,
                bytes=staged.size, sha256=staged.sha256, media_type=kind.media_type,
                kind=kind.kind, text_sha256=text_staged.sha256 if text_staged else None,
                text_chars=len(text) if text is not None else None, status="processed",
                created_at=datetime.now(UTC))
            async with engine.begin() as conn:
                seq = await records.insert_file(conn, **values)
                count, total = await records.usage(conn, account_id)
                if count > self.limits.max_files:
                    raise self._count_error()
                if total > self.limits.max_total_bytes:
                    raise PayloadTooLarge(
                        f"Storing '{name}' ({staged.size} bytes) would bring this account's "
                        f"files to {total} bytes, over its limit of "
                        f"{self.limits.max_total_bytes} bytes "
                        f"({_mb(self.limits.max_total_bytes)}); delete some files first.",
                        code="storage_quota_exceeded", param="file")
                await asyncio.to_thread(self.store.commit, staged)
                if text_staged is not None:
                    await asyncio.to_thread(self.store.commit, text_staged)
            return FileRow(seq=seq, **values)  # type: ignore[arg-type]
        finally:
            self.store.discard(staged)
            if text_staged is not None:
                self.store.discard(text_staged)

    # ------------------------------------------------------------------ read, delete

    async def get(self, engine: AsyncEngine, account_id: int | None, file_id: str) -> FileRow:
        row = await records.get(engine, account_id, file_id)
        if row is None:
            raise file_not_found(file_id)
        return row

    async def delete(self, engine: AsyncEngine, account_id: int | None,
                     file_id: str) -> FileRow:
        """Delete the row, then every blob no other row still uses, in one transaction."""
        row = await self.get(engine, account_id, file_id)
        async with engine.begin() as conn:
            if not await records.delete_file(conn, row.seq):
                raise file_not_found(file_id)
            for sha in {row.sha256, row.text_sha256} - {None}:
                assert sha is not None
                if not await records.blob_in_use(conn, sha):
                    await asyncio.to_thread(self.store.delete, sha)
        return row

    async def text(self, row: FileRow) -> str:
        if row.text_sha256 is None:
            raise InvalidRequest(f"The file '{row.id}' (purpose '{row.purpose}') has no "
                                 "extracted text.", code="file_has_no_text")
        data = await asyncio.to_thread(self.store.read, row.text_sha256)
        return data.decode("utf-8")

    async def chunks(self, row: FileRow) -> AsyncIterator[bytes]:
        it = self.store.chunks(row.sha256)
        while True:
            chunk = await asyncio.to_thread(next, it, None)
            if chunk is None:
                return
            yield chunk
