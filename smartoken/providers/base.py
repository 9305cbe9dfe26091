"""The provider seam: an adapter turns a chat call into upstream I/O and back into OpenAI
objects. Adapters never import ``api`` or ``store``; they raise ``UpstreamError`` for every
upstream failure, with a ``retryable`` flag the router acts on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

JSON = dict[str, Any]
# The key under which a provider that speaks a client protocol itself (``native_protocol``)
# finds the client's own request in the body it is given, and puts its own answer (or, in a
# stream chunk, its own events) beside the canonical one.
NATIVE = "x-smartoken-native"


class UpstreamError(Exception):
    """An upstream failure, translated at the adapter boundary.

    kind: ``connect``, ``timeout``, ``rate_limited``, ``quota`` (the route's own account is out of
    balance), ``server``, ``client`` (the request itself is bad: not retryable), ``protocol``
    (a malformed answer), ``cut`` (the stream ended early).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "server",
        status: int = 502,
        retryable: bool = True,
        retry_after: float | None = None,
        body: JSON | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.body = body


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens read from the vendor's cache (part of prompt)
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0  # prompt tokens written to the vendor's cache (part of prompt)


class Provider(Protocol):
    name: str
    native_protocol: str | None  # the client protocol it speaks itself (``messages``) or None

    async def complete(self, body: JSON) -> JSON:
        """Non-streaming chat completion; returns an OpenAI ``chat.completion`` object."""
        ...

    def stream(self, body: JSON) -> AsyncIterator[list[JSON]]:
        """Streaming chat completion; yields OpenAI ``chat.completion.chunk`` objects, in lists:
        the chunks one read from the upstream brought (never an empty list), so that the relay
        writes them to the client at once, in one write, as a byte relay would."""
        ...

    async def embed(self, body: JSON) -> JSON: ...

    async def aclose(self) -> None: ...
