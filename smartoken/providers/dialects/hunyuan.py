"""Hunyuan (Tencent): temperature 0-2; extra ``enable_enhancement`` passes through untouched."""

from __future__ import annotations

from smartoken.providers.base import JSON
from smartoken.providers.dialects.base import Dialect


class HunyuanDialect(Dialect):
    name = "hunyuan"

    def prepare(self, body: JSON, stream: bool) -> None:
        super().prepare(body, stream)
        t = body.get("temperature")
        if isinstance(t, int | float) and not isinstance(t, bool):
            body["temperature"] = min(max(float(t), 0.0), 2.0)
