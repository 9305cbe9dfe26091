"""The inbound-protocol seam: what a client protocol (Chat Completions, Embeddings, Anthropic
Messages, ...) supplies so that one protocol-neutral relay can serve it.

The relay's canonical form is an OpenAI Chat Completions body in, ``chat.completion`` /
``chat.completion.chunk`` objects out: every provider adapter speaks it. A protocol module

1. ``parse``: validates its request and translates it into the canonical body (raising
   ``InvalidRequest`` naming the field, in its own words);
2. ``render``: turns the canonical answer into its own response object;
3. ``framer``: frames the canonical stream chunks as its own server-sent events, including the
   tail on success and the in-band error event after the first byte;
4. ``error_body``: shapes a ``GatewayError`` as its own error body (status codes stay the
   gateway's).

Budgets, scopes, rate limits, context fit, files, routing, fail-over, the ledger, metrics and
logs live in ``relay/`` and never look at the protocol beyond recording its ``name``.
"""

from __future__ import annotations

from typing import Any, Protocol

from smartoken.errors import GatewayError
from smartoken.providers.base import JSON, Usage


class CallView(Protocol):
    """What a protocol may read of the relay's call (``relay.pipeline.Call`` satisfies it)."""

    request_id: str
    requested_model: str
    stream: bool
    include_usage: bool
    prompt_tokens: int


class StreamFramer(Protocol):
    """Frames one response stream for the client. One instance per request."""

    def chunk(self, chunk: JSON) -> bytes | None:
        """The bytes for one canonical chunk (usage already taken out); None to send nothing."""
        ...

    def end(self, usage: Usage) -> bytes:
        """The closing bytes of a stream that finished: ``usage`` is what will be billed."""
        ...

    def fail(self, err: GatewayError, usage: Usage) -> bytes:
        """The closing bytes of a stream that broke after its first byte (in-band error)."""
        ...


class InboundProtocol(Protocol):
    """One client protocol. ``name`` is what usage records note in ``protocol``."""

    name: str
    operation: str  # the provider operation that serves it: "complete" or "embed"

    def parse(self, data: JSON) -> JSON:
        """Validate a decoded request body and return the canonical (Chat Completions) body."""
        ...

    def render(self, resp: JSON, call: CallView) -> Any:
        """The client's response object for the canonical answer ``resp``."""
        ...

    def framer(self, call: CallView) -> StreamFramer:
        """A framer for one streamed answer."""
        ...

    def error_body(self, err: GatewayError) -> bytes:
        """``err`` in this protocol's error shape."""
        ...
