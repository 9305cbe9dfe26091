"""One ``POST /v1/responses`` request on the inbound-protocol seam.

Unlike Chat Completions, a Responses answer depends on the request beyond its canonical body
(tool names to split back, what to echo, the response id, whether to store it), so the
protocol object is made per request, after ``previous_response_id`` has been read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from smartoken.errors import GatewayError
from smartoken.protocols import responses as rp
from smartoken.protocols.responses_stream import ResponsesEvents
from smartoken.providers.base import JSON


class ResponsesCall:
    name = "responses"
    operation = "complete"

    def __init__(self, req: rp.ResponsesRequest, response_id: str,
                 on_done: Callable[[JSON], None] | None = None) -> None:
        self.req, self.response_id, self.on_done = req, response_id, on_done
        self.created_at = int(time.time())

    def parse(self, data: JSON) -> JSON:
        return self.req.chat

    def render(self, resp: JSON, call: Any) -> JSON:
        out = rp.render(self.req, resp, self.response_id, self.created_at)
        if self.on_done is not None:
            self.on_done(out)
        return out

    def framer(self, call: Any) -> ResponsesEvents:
        return ResponsesEvents(self.req, self.response_id, self.created_at, self.on_done)

    def error_body(self, err: GatewayError) -> bytes:
        return err.body()
