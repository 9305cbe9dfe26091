"""The Anthropic Messages adapter: the pooled HTTP client of ``OpenAICompatProvider`` with
``x-api-key`` + ``anthropic-version`` headers, ``/messages``, and the translation of
``dialects/anthropic.py`` on the way out and back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import orjson

from smartoken.config import ProviderConfig
from smartoken.providers.base import JSON, UpstreamError
from smartoken.providers.dialects import anthropic as dialect
from smartoken.providers.dialects.base import Dialect
from smartoken.providers.openai_compat import OpenAICompatProvider
from smartoken.relay.sse import SSEDecoder


class AnthropicProvider(OpenAICompatProvider):
    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession,
                 dialect_: Dialect) -> None:
        super().__init__(config, session, dialect_)
        self._chat_url = config.base_url + "/messages"
        self._headers.pop("Authorization", None)
        if config.api_key:
            self._headers["x-api-key"] = config.api_key
        self._headers.setdefault("anthropic-version", dialect.VERSION)

    async def complete(self, body: JSON) -> JSON:
        resp = await self._post(self._chat_url, dialect.to_messages(body))
        data = await self._read_json(resp)
        if data.get("type") == "error":
            raise self.dialect.error(500, orjson.dumps(data), None)
        return dialect.from_message(data)

    async def embed(self, body: JSON) -> JSON:
        raise UpstreamError(f"{self.name}: Anthropic has no embeddings endpoint", kind="client",
                            status=400, retryable=False,
                            body={"message": "This route does not serve embeddings.",
                                  "type": "invalid_request_error", "code": None})

    async def stream(self, body: JSON) -> AsyncIterator[JSON]:
        resp = await self._post(self._chat_url, dialect.to_messages(body))
        idle = self.config.timeouts.idle
        decoder = SSEDecoder()
        translator = dialect.StreamTranslator()
        content = resp.content
        try:
            while True:
                try:
                    async with asyncio.timeout(idle):
                        data = await content.readany()
                except TimeoutError:
                    raise UpstreamError(f"{self.name}: stream idle for {idle:g}s",
                                        kind="timeout", status=504) from None
                except aiohttp.ClientError as exc:
                    raise UpstreamError(f"{self.name}: stream broken ({type(exc).__name__})",
                                        kind="cut") from None
                for payload in decoder.feed(data) if data else decoder.close():
                    try:
                        event = orjson.loads(payload)
                    except orjson.JSONDecodeError:
                        raise UpstreamError(f"{self.name}: malformed stream event",
                                            kind="protocol") from None
                    if not isinstance(event, dict):
                        raise UpstreamError(f"{self.name}: malformed stream event",
                                            kind="protocol")
                    chunk = translator.feed(event)
                    if chunk is not None:
                        yield chunk
                    if translator.done:
                        return
                if not data:
                    raise UpstreamError(f"{self.name}: stream ended without message_stop",
                                        kind="cut")
        finally:
            resp.close() if not content.at_eof() else resp.release()
