"""Blob storage: content-addressed by SHA-256, written atomically.

A blob is staged first (written to a private temporary file while it is hashed), then either
committed (renamed into place under its hash: readers see the whole blob or nothing) or
discarded. The interface is synchronous and small, run on a thread by the callers, so an
S3-compatible store can implement it later: ``stage`` stays local (the extractor reads the
staged file), ``commit`` uploads and ``read``/``chunks``/``delete`` talk to the bucket.

Local layout under ``<data_dir>/files``::

    blobs/ab/cd/abcd…   committed blobs (immutable, mode 0600)
    tmp/                staged uploads; leftovers of a crash are swept at start
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024
STALE_TMP_SECONDS = 3600


class BlobTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class BlobMissing(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Staged:
    """A blob written to a private temporary file, not yet visible to readers."""

    path: Path
    sha256: str
    size: int


class BlobStore(Protocol):
    def stage(self, src: BinaryIO, limit: int) -> Staged: ...
    def stage_bytes(self, data: bytes) -> Staged: ...
    def commit(self, staged: Staged) -> None: ...
    def discard(self, staged: Staged) -> None: ...
    def exists(self, sha256: str) -> bool: ...
    def read(self, sha256: str) -> bytes: ...
    def chunks(self, sha256: str) -> Iterator[bytes]: ...
    def delete(self, sha256: str) -> None: ...


def _check_sha(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return sha256


class LocalBlobStore:
    """Blobs in a local folder. Safe for several processes sharing the folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.tmp = self.root / "tmp"

    def open(self) -> LocalBlobStore:
        """Create the folders and sweep temporary files left by a crash."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - STALE_TMP_SECONDS
        for p in self.tmp.iterdir():
            with contextlib.suppress(OSError):
                if p.stat().st_mtime < cutoff:
                    p.unlink()
        return self

    def path(self, sha256: str) -> Path:
        _check_sha(sha256)
        return self.blobs / sha256[:2] / sha256[2:4] / sha256

    def _temp(self) -> tuple[Path, int]:
        path = self.tmp / f"{secrets.token_hex(16)}.part"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return path, fd

    def stage(self, src: BinaryIO, limit: int) -> Staged:
        """Copy ``src`` to a temporary file while hashing it; ``BlobTooLarge`` past ``limit``."""
        path, fd = self._temp()
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise BlobTooLarge(size)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Staged(path, digest.hexdigest(), size)

    def stage_bytes(self, data: bytes) -> Staged:
        path, fd = self._temp()
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Staged(path, hashlib.sha256(data).hexdigest(), len(data))

    def commit(self, staged: Staged) -> None:
        """Rename the staged file into place (atomic; same content if it already exists)."""
        final = self.path(staged.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, final)

    def discard(self, staged: Staged) -> None:
        staged.path.unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(sha256) from None

    def chunks(self, sha256: str) -> Iterator[bytes]:
        try:
            f = self.path(sha256).open("rb")
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        with f:
            while chunk := f.read(CHUNK):
                yield chunk

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
