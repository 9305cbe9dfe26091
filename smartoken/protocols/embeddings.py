"""OpenAI Embeddings (``POST /v1/embeddings``): unary only, routed like chat."""

from __future__ import annotations

from smartoken.errors import GatewayError, InvalidRequest
from smartoken.protocols import wire
from smartoken.protocols.base import CallView, StreamFramer
from smartoken.providers.base import JSON


class Embeddings:
    name = "embeddings"
    operation = "embed"

    def parse(self, data: JSON) -> JSON:
        wire.validate_embeddings(data)
        return data

    def render(self, resp: JSON, call: CallView) -> JSON:
        return resp

    def framer(self, call: CallView) -> StreamFramer:
        raise InvalidRequest("Embeddings are not streamed.", param="stream")

    def error_body(self, err: GatewayError) -> bytes:
        return err.body()


PROTOCOL = Embeddings()
