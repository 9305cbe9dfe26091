"""Doubao (Volcengine Ark): ``model`` must be an endpoint id (``ep-…``) or a dated model id; an
undated name is 404 ``InvalidEndpointOrModel.NotFound``. That is the route's misconfigured
upstream id, not the client's mistake (the client asked for a public model the gateway serves):
the route is cooled down long and the request fails over; with no other route the client gets
a 503 naming the route and the Ark error."""

from __future__ import annotations

from smartoken.providers.base import UpstreamError
from smartoken.providers.dialects.base import Dialect

NOT_FOUND = "InvalidEndpointOrModel.NotFound"


class DoubaoDialect(Dialect):
    name = "doubao"

    def error(self, status: int, raw: bytes, retry_after: float | None) -> UpstreamError:
        message, code, _ = self._error_fields(raw)
        if code == NOT_FOUND or (status == 404 and NOT_FOUND in message):
            return UpstreamError(f"upstream has no endpoint or model for this route's id "
                                 f"({code}): {message}", kind="config", status=404)
        return super().error(status, raw, retry_after)
