"""A crash journal for the usage records the batched writer has not written yet.

The ledger writer keeps finished requests in memory for up to one flush interval. A process
killed in that window (SIGKILL, the OOM killer) used to lose them: served, but never recorded
nor debited. With the journal each record is also appended, as one JSON line, to a segment file
in ``<data_dir>/journal/`` before the response is sent (one ``write`` to the page cache, no
fsync: it survives the process, not the machine). Every flush closes the current segment and
starts a new one; a segment is deleted once every record in it is committed. On start, the
segments of processes that are gone are written to the database (records already there are
skipped: the request id is the key), then deleted.

Streams also write progress lines (``progress``, about once a second while they deliver): the
record the stream would get if it were cut now (status partial, billed for what it delivered).
A progress line is never counted as a record to commit: recovery writes the last progress of
a request only when the journal has no final record for it (the process died mid-stream).
Every rotation re-writes the last progress of each running stream into the new segment, so
deleting committed segments never deletes it.

A live process holds an exclusive ``flock`` on ``<origin>.lock``; recovery takes only the
segments whose owner's lock it can take, so processes sharing a data folder never replay each
other's live journal.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson

from smartoken.ledger.records import ROW_FIELDS, UsageRecord

log = logging.getLogger("smartoken.ledger")
_values = attrgetter(*ROW_FIELDS)
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


def line(rec: UsageRecord) -> bytes:
    """A final record's journal line (also the value kept in Redis, redis_reserver.py)."""
    return orjson.dumps(_values(rec)) + b"\n"


def progress_line(rec: UsageRecord) -> bytes:
    return orjson.dumps({"p": _values(rec)}) + b"\n"


def parse_entry(raw: bytes | str) -> tuple[UsageRecord | None, bool]:
    """A journal line or Redis journal value: the record, and whether it is a progress."""
    return _parse_any(raw)


def _parse(line: bytes) -> UsageRecord | None:
    rec, _progress = _parse_any(line)
    return rec


def _parse_any(line: bytes | str) -> tuple[UsageRecord | None, bool]:
    """A record, and whether it is a progress line (a stream still running)."""
    try:
        values = orjson.loads(line)
        progress = isinstance(values, dict)
        if progress:
            values = values["p"]
        if not isinstance(values, list) or len(values) > len(ROW_FIELDS):
            return None, False
        # a line written before a column was added holds the leading fields only
        data: dict[str, Any] = dict(zip(ROW_FIELDS, values, strict=False))
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        return UsageRecord(**data), progress
    except (ValueError, TypeError, KeyError):  # a line cut by a crash mid-write
        return None, False


class Journal:
    """The segments of one process. ``append`` per record (synchronous, never awaits),
    ``rotate`` when a flush takes the queued records, ``written(n)`` after n records (oldest
    first) are committed."""

    def __init__(self, folder: Path, origin: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.origin = origin
        self._lock = folder / f"{origin}.lock"
        self._lock_fd = os.open(self._lock, _FLAGS, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._seq = 0
        # Oldest first: [path, records in it not yet committed]; the last one is being written.
        self._segments: deque[list[Any]] = deque()
        self._progress: dict[str, bytes] = {}  # the last progress line of each running stream
        self._fd = -1
        self._open_segment()

    def _open_segment(self) -> None:
        self._seq += 1
        path = self.folder / f"{self.origin}.{self._seq:08d}.jsonl"
        self._fd = os.open(path, _FLAGS, 0o600)
        self._segments.append([path, 0])

    def append(self, rec: UsageRecord, data: bytes | None = None) -> None:
        os.write(self._fd, line(rec) if data is None else data)
        self._segments[-1][1] += 1
        self._progress.pop(rec.id, None)

    def progress(self, rec: UsageRecord) -> None:
        """What a running stream would be billed if cut now (replaced by its final record)."""
        data = progress_line(rec)
        os.write(self._fd, data)
        self._progress[rec.id] = data

    def rotate(self) -> None:
        """Start a new segment (when the current one holds records), carrying the last
        progress of each running stream into it."""
        if self._segments[-1][1]:
            os.close(self._fd)
            self._open_segment()
            if self._progress:
                os.write(self._fd, b"".join(self._progress.values()))

    def written(self, n: int) -> None:
        """The ``n`` oldest journaled records are committed: delete the segments they fill."""
        while n > 0 and self._segments:
            head = self._segments[0]
            take = min(n, head[1])
            head[1] -= take
            n -= take
            if head[1] == 0 and len(self._segments) > 1:
                self._segments.popleft()
                with contextlib.suppress(OSError):
                    head[0].unlink()

    @property
    def pending(self) -> int:
        return sum(s[1] for s in self._segments)

    def close(self) -> None:
        """Shut down: delete what is committed; a segment with records left (the last flush
        failed) stays for the next start to recover."""
        os.close(self._fd)
        for path, left in self._segments:
            if not left:
                with contextlib.suppress(OSError):
                    path.unlink()
        if not self.pending:
            with contextlib.suppress(OSError):
                self._lock.unlink()
        os.close(self._lock_fd)


@dataclass(slots=True)
class Orphan:
    """The journal of a process that is gone; its lock is held by this process meanwhile."""

    lock: Path
    fd: int
    segments: list[Path]

    def records(self) -> list[UsageRecord]:
        """The final records, and for each stream cut by the death (progress lines but no
        final record) its last progress: billed for what it delivered."""
        out: dict[str, UsageRecord] = {}
        cut: dict[str, UsageRecord] = {}
        for path in self.segments:
            for line in path.read_bytes().splitlines():
                rec, progress = _parse_any(line)
                if rec is None:
                    if line.strip():
                        log.warning("journal %s: skipped an unreadable line", path.name)
                elif progress:
                    cut[rec.id] = rec  # the last one wins
                else:
                    out.setdefault(rec.id, rec)
        for rid, rec in cut.items():
            out.setdefault(rid, rec)
        return list(out.values())

    def release(self, *, delete: bool) -> None:
        """Let go of the lock; with ``delete`` (its records are committed), remove the files."""
        if delete:
            for path in self.segments:
                with contextlib.suppress(OSError):
                    path.unlink()
            with contextlib.suppress(OSError):
                self.lock.unlink()
        os.close(self.fd)


def orphans(folder: Path, min_age: float = 2.0) -> list[Orphan]:
    """The journals in ``folder`` whose process is gone (its lock can be taken). A lock file
    younger than ``min_age`` seconds is left alone: its process may be between creating it and
    locking it."""
    out: list[Orphan] = []
    if not folder.is_dir():
        return out
    young = time.time() - min_age
    for lock in sorted(folder.glob("*.lock")):
        try:
            if lock.stat().st_mtime > young:
                continue
            fd = os.open(lock, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:  # recovered meanwhile by another process
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its process is alive
            os.close(fd)
            continue
        origin = lock.name[: -len(".lock")]
        out.append(Orphan(lock, fd, sorted(folder.glob(f"{origin}.*.jsonl"))))
    return out
