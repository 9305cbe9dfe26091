"""Server-sent events: an incremental decoder for upstream streams, and the frames we send."""

from __future__ import annotations

DONE = b"[DONE]"
DONE_FRAME = b"data: [DONE]\n\n"


def frame(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


class SSEDecoder:
    """Feed raw bytes, get back the ``data`` payload of each complete event.

    Handles ``\\n``, ``\\r\\n`` and ``\\r`` line ends, multi-line data, comments (``: ping``)
    and events split across reads. Other fields (``event:``, ``id:``) are ignored except that
    an ``event: error`` marks the next payload as an error (``error_event`` flag).
    """

    __slots__ = ("_buf", "_data", "event")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self.event = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out: list[bytes] = []
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            start = nl + 1
            if not line:
                if self._data:
                    out.append(b"\n".join(self._data))
                    self._data = []
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value[:1] == b" " else value)
            elif line.startswith(b"event:"):
                self.event = line[6:].strip()
        self._buf = buf[start:]
        return out

    @property
    def pending(self) -> int:
        """Bytes held for an event not complete yet (bounded by the caller)."""
        return len(self._buf) + sum(len(d) for d in self._data)

    def close(self) -> list[bytes]:
        """Flush a final event the upstream did not terminate with a blank line."""
        out = self.feed(b"\n\n") if (self._buf or self._data) else []
        self._buf = b""
        return out
