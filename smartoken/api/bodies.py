"""Reading a request body that may be large: into one ``bytearray`` as it arrives (no list of
chunks joined at the end, which held the body twice), under an admission of the process's
``BodyGate`` once it passes ``admission.LARGE`` bytes (held until the ``async with`` ends), and
parsed in at most twice its size (``parse_large``)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from starlette.requests import Request

from smartoken.admission import LARGE, BodyGate
from smartoken.errors import InvalidRequest, PayloadTooLarge
from smartoken.protocols import wire

JSON = dict[str, Any]


def release_admission(request: Request) -> None:
    """Give back the request's large-body admission, if it holds one (idempotent)."""
    admission = getattr(request.state, "admission", None)
    if admission is not None:
        admission.release()


class Admission:
    """``async with Admission(gate, request, limit) as a: body = await a.read()``."""

    def __init__(self, gate: BodyGate, request: Request, limit: int) -> None:
        self.gate, self.request, self.limit = gate, request, limit
        self.held = False

    async def __aenter__(self) -> Admission:
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()

    async def json(self) -> JSON:
        """The body parsed: a large one off the event loop in twice its size, and the
        admission noted on the request for ``release_admission``."""
        body = await self.read()
        if not self.held:
            return wire.parse_json(body)
        self.request.state.admission = self
        return await asyncio.to_thread(parse_large, body)

    def release(self) -> None:
        if self.held:
            self.held = False
            self.gate.release()

    async def _admit(self) -> None:
        if not self.held:
            await self.gate.acquire()
            self.held = True

    async def read(self) -> bytearray:
        """The body, refused with 413 as soon as it passes ``limit`` bytes."""
        limit = self.limit
        header = self.request.headers.get("content-length")
        declared = int(header) if header is not None and header.isdigit() else None
        if declared is not None and declared > limit:
            raise PayloadTooLarge(f"Request body of {declared} bytes is larger than the limit "
                                  f"of {limit} bytes.")
        if declared is not None and declared >= LARGE:
            await self._admit()
            return await self._read_declared(declared)
        body = bytearray()
        async for chunk in self.request.stream():
            if len(body) + len(chunk) > limit:
                raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
            if len(body) + len(chunk) >= LARGE:
                await self._admit()
            body += chunk
        return body

    async def _read_declared(self, size: int) -> bytearray:
        """Into a buffer of the declared size (a growing one keeps ~1/8 spare)."""
        body = bytearray(size)
        view, n = memoryview(body), 0
        async for chunk in self.request.stream():
            if n + len(chunk) > size:  # the server enforces Content-Length; be safe anyway
                raise PayloadTooLarge(f"Request body is larger than its Content-Length {size}.")
            view[n:n + len(chunk)] = chunk
            n += len(chunk)
        view.release()
        del body[n:]
        return body


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_INT64 = (-(1 << 63), (1 << 64) - 1)  # what orjson reads


def _int(text: str) -> int:
    value = int(text)
    if not _INT64[0] <= value <= _INT64[1]:
        raise ValueError(f"integer {text[:30]} does not fit in 64 bits")
    return value


def _constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def _utf8_clean(s: str, step: int = 1 << 20) -> bool:
    try:
        for i in range(0, len(s), step):
            s[i:i + step].encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_large(body: bytearray) -> JSON:
    """A large body parsed in twice its size, accepting what ``wire.parse_json`` accepts.

    orjson (yyjson) reserves ~12 bytes per byte of input while it parses: 390 MB for a 30 MB
    prompt. Here the body is decoded, its buffer emptied, and the text parsed by the standard
    library, so at most the text and the parsed document exist at once. orjson's limits are
    kept: UTF-8 only, integers of 64 bits, no NaN/Infinity, no lone surrogates.
    """
    if not body:
        raise InvalidRequest("The request body is empty: send a JSON object.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    check_surrogates = _SURROGATE_ESCAPE.search(body) is not None
    del body[:]  # the caller's buffer: the text is the only copy now
    try:
        data = json.loads(text, parse_int=_int, parse_constant=_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    del text
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if check_surrogates and not all(_utf8_clean(s) for s in _strings(data)):
        raise InvalidRequest("The request body is not valid JSON: a string holds a lone "
                             "surrogate.")
    return data
