"""One TLS context for every HTTP client the tests make.

httpx (and the SDKs' httpx2) build a new ``ssl.SSLContext`` for every client, loading the whole
CA bundle: ~55 ms of CPU for each ``httpx.get``, ``AdminAPI`` call, ``gw.client()`` and readiness
poll, thousands of times in a run, all for plain-HTTP loopback gateways. The tests' clients
share one context per set of arguments instead (an ``SSLContext`` is made to be shared); a
client given its own context or file still gets exactly that."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from typing import Any


def _cached(create: Callable[..., ssl.SSLContext]) -> Callable[..., ssl.SSLContext]:
    shared = functools.lru_cache(maxsize=8)(create)

    @functools.wraps(create)
    def create_ssl_context(verify: Any = True, cert: Any = None,
                           trust_env: bool = True) -> ssl.SSLContext:
        if isinstance(verify, bool) and cert is None:
            return shared(verify=verify, cert=None, trust_env=trust_env)
        return create(verify=verify, cert=cert, trust_env=trust_env)

    return create_ssl_context


def install() -> None:
    import importlib

    for package in ("httpx", "httpx2"):
        try:
            config = importlib.import_module(f"{package}._config")
            transports = importlib.import_module(f"{package}._transports.default")
        except ImportError:
            continue
        if getattr(config.create_ssl_context, "__wrapped__", None) is None:
            config.create_ssl_context = _cached(config.create_ssl_context)
        transports.create_ssl_context = config.create_ssl_context
