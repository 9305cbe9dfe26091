"""The Anthropic Messages adapter: the pooled HTTP client of ``OpenAICompatProvider`` with
``x-api-key`` + ``anthropic-version`` headers, ``/messages``, and the translation of
``dialects/anthropic.py`` on the way out and back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import aiohttp
import orjson
from yarl import URL

from smartoken.config import ProviderConfig
from smartoken.providers.base import JSON, UpstreamError
from smartoken.providers.dialects import anthropic as dialect
from smartoken.providers.dialects.base import Dialect
from smartoken.providers.openai_compat import OpenAICompatProvider


class AnthropicProvider(OpenAICompatProvider):
    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession,
                 dialect_: Dialect) -> None:
        super().__init__(config, session, dialect_)
        self._chat_url = URL(config.base_url + "/messages")

    def base_headers(self) -> dict[str, str]:
        return {**super().base_headers(), "anthropic-version": dialect.VERSION}

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    async def complete(self, body: JSON) -> JSON:
        data = await self._unary(self._chat_url, dialect.to_messages(body))
        if data.get("type") == "error":
            raise self.dialect.error(500, self._scrub(orjson.dumps(data)), None)
        return dialect.from_message(data)

    async def embed(self, body: JSON) -> JSON:
        raise UpstreamError(f"{self.name}: Anthropic has no embeddings endpoint", kind="client",
                            status=400, retryable=False,
                            body={"message": "This route does not serve embeddings.",
                                  "type": "invalid_request_error", "code": None})

    async def stream(self, body: JSON) -> AsyncIterator[JSON]:
        translator = dialect.StreamTranslator()
        async with aclosing(self.sse(self._chat_url, dialect.to_messages(body))) as events:
            async for payload in events:
                chunk = translator.feed(self.parse_event(payload))
                if chunk is not None:
                    yield chunk
                if translator.done:
                    return
        raise UpstreamError(f"{self.name}: stream ended without message_stop", kind="cut")
