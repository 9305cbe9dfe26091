"""The Anthropic Messages adapter: the pooled HTTP client of ``OpenAICompatProvider`` with
``x-api-key`` + ``anthropic-version`` headers, ``/messages``, and the translation of
``dialects/anthropic.py`` on the way out and back.

A client that speaks Anthropic Messages itself (``native_protocol``) is passed through: the
body then carries the client's own request under ``NATIVE`` and that is what is sent; the
answer (or each stream event) is kept under ``NATIVE`` beside its canonical translation, which
the relay reads for usage and billing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import aiohttp
import orjson
from yarl import URL

from smartoken.config import ProviderConfig
from smartoken.providers import shape
from smartoken.providers.base import JSON, NATIVE, UpstreamError
from smartoken.providers.batches import batched
from smartoken.providers.dialects import anthropic as dialect
from smartoken.providers.dialects.base import Dialect
from smartoken.providers.openai_compat import OpenAICompatProvider
from smartoken.providers.stream_scrub import EventScrubber


class AnthropicProvider(OpenAICompatProvider):
    native_protocol = "messages"

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession,
                 dialect_: Dialect) -> None:
        super().__init__(config, session, dialect_)
        self._chat_url = URL(config.base_url + "/messages")

    def base_headers(self) -> dict[str, str]:
        return {**super().base_headers(), "anthropic-version": dialect.VERSION}

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def _request(self, body: JSON) -> tuple[JSON, bool]:
        native = body.pop(NATIVE, None)
        if isinstance(native, dict):
            return dialect.native_request(native, body), True
        return dialect.to_messages(body), False

    async def complete(self, body: JSON) -> JSON:
        request, native = self._request(body)
        data = await self._unary(self._chat_url, request)
        with shape.reading(self.name):
            if data.get("type") == "error":
                raise self.dialect.error(500, self._scrub(orjson.dumps(data)), None)
            resp = shape.completion(dialect.from_message(data), self.name)
        if native:
            resp[NATIVE] = data
        return resp

    async def embed(self, body: JSON) -> JSON:
        raise UpstreamError(f"{self.name}: Anthropic has no embeddings endpoint", kind="client",
                            status=400, retryable=False,
                            body={"message": "This route does not serve embeddings.",
                                  "type": "invalid_request_error", "code": None})

    async def stream(self, body: JSON) -> AsyncIterator[list[JSON]]:
        translator = dialect.StreamTranslator()
        request, native = self._request(body)
        # A secret split across two events is in neither: scrub what the client assembles.
        split = EventScrubber(self._secrets) if self._secrets else None

        def take(payload: bytes, batch: list[JSON]) -> bool:
            parsed = self.parse_event(payload)
            for event in split.feed(parsed) if split is not None else (parsed,):
                chunk = translator.feed(event)
                if native:  # every event goes on, beside its translation (if any)
                    chunk = chunk if chunk is not None else {"choices": []}
                    chunk[NATIVE] = [event]
                if chunk is not None:
                    batch.append(chunk)
                if translator.done:
                    return True
            return False

        # closed at once when the relay stops early (the upstream connection with it)
        reads = self.sse(self._chat_url, request)
        async with aclosing(batched(reads, take, self.name, "message_stop")) as batches:
            async for batch in batches:
                yield batch
