"""The generic adapter for OpenAI-compatible upstreams, over a pooled aiohttp session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import aiohttp
import orjson
from yarl import URL

from smartoken.config import ProviderConfig
from smartoken.providers import fim, shape
from smartoken.providers.base import JSON, UpstreamError
from smartoken.providers.batches import batched
from smartoken.providers.dialects.base import Dialect
from smartoken.providers.idle import IdleTimer
from smartoken.providers.keypool import KeyPool, is_key_error
from smartoken.providers.stream_scrub import StreamScrubber
from smartoken.relay.sse import DONE, SSEDecoder

SECRET_MIN = 6  # shorter values would scrub ordinary words (as logs.MIN_LITERAL)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class OpenAICompatProvider:
    native_protocol: str | None = None

    def __init__(
        self, config: ProviderConfig, session: aiohttp.ClientSession, dialect: Dialect
    ) -> None:
        self.name = config.name
        self.config = config
        self.dialect = dialect
        self._session = session
        # Parsed once: aiohttp parses a string URL on every request.
        self._chat_url = URL(config.base_url + "/chat/completions")
        self._embed_url = URL(config.base_url + "/embeddings")
        fim_url = fim.url(dialect.name, config.base_url)
        self._fim_url = URL(fim_url) if fim_url else None
        self.pool = KeyPool(config.keys())
        custom = dict(config.headers)  # the operator's headers win over ours
        self._key_headers = [{**self.base_headers(), **self.auth_headers(k), **custom}
                             for k in self.pool.keys] or [{**self.base_headers(), **custom}]
        # Everything this provider sends that is secret: its keys and every extra header value
        # (an upstream can only echo what it was sent). Scrubbed from everything it answers.
        sent = {*self.pool.keys, *(v for _, v in config.headers)}
        self._secrets = sorted({v.encode() for v in sent if len(v) >= SECRET_MIN},
                               key=len, reverse=True)
        t = config.timeouts
        self._timeout = aiohttp.ClientTimeout(total=t.total, sock_connect=t.connect)

    def base_headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Accept": "application/json"}

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def _scrub(self, raw: bytes) -> bytes:
        """An upstream that echoes a secret we sent (a key, a header value) must not pass it on
        to clients, usage records or logs: every answer, error and stream event goes through
        here at the provider boundary."""
        for secret in self._secrets:
            if secret in raw:
                raw = raw.replace(secret, b"***")
        return raw

    async def _post(self, url: URL, body: JSON, timer: IdleTimer) -> aiohttp.ClientResponse:
        """POST with the pool's keys in turn: a refusal that is about the key (see
        ``keypool``) moves on to the next key; any other answer is the request's."""
        data = orjson.dumps(body)
        order = self.pool.order() if self.pool.keys else [0]
        for n, index in enumerate(order):
            try:
                resp = await self._post_once(url, data, self._key_headers[index], timer)
            except UpstreamError as err:
                if self.pool.keys and is_key_error(err.status, err.kind):
                    self.pool.failed(index, err.status, err.kind, err.message, err.retry_after)
                    if n + 1 < len(order):
                        continue
                raise
            if self.pool.keys:
                self.pool.ok(index)
            return resp
        raise AssertionError("unreachable: the last key's error is raised")

    async def _post_once(self, url: URL, data: bytes, headers: dict[str, str],
                         timer: IdleTimer) -> aiohttp.ClientResponse:
        t = self.config.timeouts
        timer.start_read(t.first_byte)
        try:
            resp = await self._session.post(url, data=data, headers=headers,
                                            timeout=self._timeout, allow_redirects=False)
        except asyncio.CancelledError:
            if timer.timed_out():
                raise UpstreamError(f"{self.name}: no response within {t.first_byte:g}s",
                                    kind="timeout", status=504) from None
            raise
        except TimeoutError:
            raise UpstreamError(f"{self.name}: no response within {t.first_byte:g}s",
                                kind="timeout", status=504) from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(f"{self.name}: cannot connect ({exc.os_error})",
                                kind="connect", status=503) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{self.name}: {type(exc).__name__}", kind="connect",
                                status=502) from None
        timer.end_read()
        if 300 <= resp.status < 400:  # never followed: it would re-send the body and headers
            resp.release()
            raise UpstreamError(f"{self.name}: the upstream answered {resp.status} (a redirect); "
                                "redirects are not followed: fix the provider's base URL",
                                kind="protocol", status=502)
        if resp.status != 200:
            timer.start_read(t.idle)
            try:
                raw = await resp.read()
            except asyncio.CancelledError:
                if not timer.timed_out():
                    raise
                raw = b""
            except (TimeoutError, aiohttp.ClientError):
                raw = b""
            finally:
                timer.end_read()
                resp.release()
            raise self.dialect.error(resp.status, self._scrub(raw), _retry_after(resp.headers))
        return resp

    def _too_large(self) -> UpstreamError:
        return UpstreamError(f"{self.name}: the answer is larger than max_answer_mb "
                             f"({self.config.max_answer_bytes // (1024 * 1024)} MiB)",
                             kind="protocol")

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        """The body, decompressed, refused once it passes ``max_answer_bytes``."""
        cap = self.config.max_answer_bytes
        if resp.content_length is not None and resp.content_length > cap:
            raise self._too_large()
        parts: list[bytes] = []
        size = 0
        async for part in resp.content.iter_any():
            size += len(part)
            if size > cap:
                raise self._too_large()
            parts.append(part)
        return b"".join(parts)  # one part is returned as it is, not copied

    async def _read_json(self, resp: aiohttp.ClientResponse, timer: IdleTimer) -> JSON:
        t = self.config.timeouts
        timer.start_read(t.idle)
        try:
            raw = self._scrub(await self._read_capped(resp))
        except asyncio.CancelledError:
            if timer.timed_out():
                raise UpstreamError(f"{self.name}: response body stalled", kind="timeout",
                                    status=504) from None
            raise
        except TimeoutError:
            raise UpstreamError(f"{self.name}: response body stalled", kind="timeout",
                                status=504) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{self.name}: {type(exc).__name__} reading the response",
                                kind="cut", status=502) from None
        finally:
            timer.end_read()
            resp.release()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.name}: response is not JSON", kind="protocol") from None
        if not isinstance(data, dict):
            raise UpstreamError(f"{self.name}: response is not an object", kind="protocol")
        if "error" in data and "choices" not in data and "data" not in data:
            raise self.dialect.error(500, self._scrub(raw), None)
        return data

    async def _unary(self, url: URL, body: JSON) -> JSON:
        timer = IdleTimer(self.config.timeouts.first_byte)
        try:
            return await self._read_json(await self._post(url, body, timer), timer)
        finally:
            timer.close()

    @property
    def supports_fim(self) -> bool:
        return self._fim_url is not None

    def _fim(self, body: JSON) -> tuple[URL, JSON] | None:
        """A body with ``suffix`` goes to the FIM endpoint (see ``fim.py``)."""
        if "suffix" not in body:
            return None
        if self._fim_url is None:
            raise UpstreamError(f"{self.name}: no fill-in-the-middle endpoint", kind="client",
                                status=400)
        return self._fim_url, fim.request(body)

    async def complete(self, body: JSON) -> JSON:
        fim_call = self._fim(body)
        if fim_call is None:
            self.dialect.prepare(body, stream=False)
        data = await self._unary(*(fim_call or (self._chat_url, body)))
        with shape.reading(self.name):
            resp = self.dialect.normalize_response(fim.to_chat(data) if fim_call else data)
            return shape.completion(resp, self.name)

    async def embed(self, body: JSON) -> JSON:
        return shape.embeddings(await self._unary(self._embed_url, body), self.name)

    async def sse(self, url: URL, body: JSON) -> AsyncGenerator[list[bytes], None]:
        """POST ``body`` and yield the payloads of the server-sent events as they arrive: those
        each read completed, together (never an empty list).

        A gap longer than the idle timeout, a broken connection or a malformed answer become
        ``UpstreamError``; the iteration simply ends when the upstream closes the stream (the
        caller decides whether that end was complete). Use with ``contextlib.aclosing`` so the
        connection is closed at once when the consumer stops early."""
        idle = self.config.timeouts.idle
        timer = IdleTimer(self.config.timeouts.first_byte)
        try:
            resp = await self._post(url, body, timer)
        except BaseException:
            timer.close()
            raise
        decoder = SSEDecoder()
        content = resp.content
        try:
            while True:
                timer.start_read(idle)
                try:
                    data = await content.readany()
                except asyncio.CancelledError:
                    if timer.timed_out():
                        raise UpstreamError(f"{self.name}: stream idle for {idle:g}s",
                                            kind="timeout", status=504) from None
                    raise
                except aiohttp.ClientError as exc:
                    raise UpstreamError(f"{self.name}: stream broken ({type(exc).__name__})",
                                        kind="cut") from None
                timer.end_read()
                payloads = decoder.feed(data) if data else decoder.close()
                if decoder.pending > self.config.max_answer_bytes:  # an event without end
                    raise self._too_large()
                if payloads:
                    yield [self._scrub(p) for p in payloads] if self._secrets else payloads
                if not data:
                    return
        finally:
            timer.close()
            resp.close() if not content.at_eof() else resp.release()

    def parse_event(self, payload: bytes) -> JSON:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.name}: malformed stream chunk", kind="protocol") from None
        if not isinstance(event, dict):
            raise UpstreamError(f"{self.name}: malformed stream chunk", kind="protocol")
        return event

    async def stream(self, body: JSON) -> AsyncIterator[list[JSON]]:
        fim_call = self._fim(body)
        if fim_call is None:
            self.dialect.prepare(body, stream=True)
        url, body = fim_call or (self._chat_url, body)
        # A secret split across two events is in neither: scrub what the client assembles.
        split = StreamScrubber(self._secrets) if self._secrets else None

        def take(payload: bytes, batch: list[JSON]) -> bool:
            if payload == DONE:
                if split is not None and (rest := split.flush()) is not None:
                    batch.append(rest)
                return True
            chunk = self.parse_event(payload)
            if "error" in chunk and not chunk.get("choices"):
                raise self.dialect.error(500, self._scrub(payload), None)
            chunk = self.dialect.normalize_chunk(fim.to_chat(chunk, delta=True)
                                                 if fim_call else chunk)
            batch.append(chunk if split is None else split.feed(chunk))
            return False

        # closed at once when the relay stops early (the upstream connection with it)
        async with aclosing(batched(self.sse(url, body), take, self.name, "[DONE]")) as batches:
            async for batch in batches:
                yield batch

    async def list_models(self) -> list[str]:
        """The upstream's model ids (``GET {base_url}/models``), for the admin *Test* action."""
        headers = self._key_headers[self.pool.order()[0] if self.pool.keys else 0]
        url = URL(self.config.base_url + "/models")
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=10)) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError(f"{self.name}: GET /models failed ({type(exc).__name__})",
                                kind="connect") from None
        if status != 200:
            raise self.dialect.error(status, self._scrub(raw), None)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.name}: /models is not JSON", kind="protocol") from None
        items = data.get("data") if isinstance(data, dict) else None
        return sorted({str(m["id"]) for m in items or [] if isinstance(m, dict) and "id" in m}
                      )[:1000]

    async def aclose(self) -> None:
        return None
