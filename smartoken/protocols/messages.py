"""Anthropic Messages (``POST /v1/messages``, ``/v1/messages/count_tokens``) on the relay:
request and answer translation in ``messages_convert.py``, stream events in
``messages_stream.py``."""

from __future__ import annotations

import orjson

from smartoken.errors import GatewayError
from smartoken.protocols import messages_convert as convert
from smartoken.protocols.base import CallView
from smartoken.protocols.messages_stream import MessagesFramer
from smartoken.providers.base import JSON


class Messages:
    name = "messages"
    operation = "complete"

    def parse(self, data: JSON) -> JSON:
        return convert.to_chat(data)

    def render(self, resp: JSON, call: CallView) -> JSON:
        return convert.render(resp, call)

    def framer(self, call: CallView) -> MessagesFramer:
        return MessagesFramer(call)

    def error_body(self, err: GatewayError) -> bytes:
        return orjson.dumps(convert.error_payload(err))


PROTOCOL = Messages()
