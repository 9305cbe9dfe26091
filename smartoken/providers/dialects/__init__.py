"""Each family's deviations from OpenAI, one module per family (registered in ``DIALECTS``)."""

from __future__ import annotations

from smartoken.providers.dialects.base import Dialect

DIALECTS: dict[str, type[Dialect]] = {}


def get_dialect(name: str) -> Dialect:
    return DIALECTS.get(name, Dialect)()
