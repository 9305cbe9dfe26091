"""Build the adapter for a configured provider: the dialect decides which transport speaks it."""

from __future__ import annotations

import aiohttp

from smartoken.config import ProviderConfig
from smartoken.providers.anthropic import AnthropicProvider
from smartoken.providers.base import Provider
from smartoken.providers.dialects import get_dialect
from smartoken.providers.openai_compat import OpenAICompatProvider

TRANSPORTS: dict[str, type[OpenAICompatProvider]] = {
    "openai": OpenAICompatProvider,
    "anthropic": AnthropicProvider,
}


def make_provider(config: ProviderConfig, session: aiohttp.ClientSession) -> Provider:
    dialect = get_dialect(config.dialect)
    return TRANSPORTS[dialect.transport](config, session, dialect)
