"""Stored providers, live: applying a change to a running gateway, and following changes made
by other processes (another worker, another replica, the CLI).

The admin API applies its own change at once (``apply``); every process also polls the
``stored_providers`` table once a second (``follow``) and reloads the stored providers when
their version (row count, latest update) moves, so ``--workers N`` and replicas converge
within about a second.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.auth.secretbox import SecretBox
from smartoken.config import Settings
from smartoken.logs import protect
from smartoken.providers.dialects import get_dialect
from smartoken.providers.openai_compat import OpenAICompatProvider
from smartoken.store.providers import StoredProvider, list_stored, merged
from smartoken.store.schema import stored_providers

log = logging.getLogger("smartoken.providers")
POLL_INTERVAL = 1.0


def apply(state: Any, stored: list[StoredProvider], removed: frozenset[str] = frozenset()
          ) -> None:
    """Serve ``stored`` (new versions of those providers) and stop serving ``removed``.
    ``state`` is the ``AppState``; adapters share its session, so nothing needs closing."""
    settings = merged(state.settings, stored, removed)
    for name in removed:
        state.providers.pop(name, None)
    for p in stored:
        state.providers.pop(p.name, None)
        if p.enabled and state.session is not None:
            protect(p.api_key, *(v for _, v in p.headers))
            cfg = p.config()
            state.providers[p.name] = OpenAICompatProvider(cfg, state.session,
                                                           get_dialect(cfg.dialect))
    state.settings = settings
    state.router.set_routes(settings.routes)


async def version(engine: AsyncEngine) -> tuple[int, str]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(func.count(), func.max(stored_providers.c.updated_at))
                                  )).one()
    return int(row[0]), str(row[1])


async def follow(state: Any, config: Settings, interval: float = POLL_INTERVAL) -> None:
    """Reload the stored providers whenever their table changed (first: at once, to catch a
    change made between start-up and now). ``config`` is the settings before the stored
    providers were merged in: its provider names are the configuration file's, which win."""
    yaml_names = {n for n, cfg in config.providers.items() if not cfg.is_demo}
    stored_names = {n for n, cfg in state.settings.providers.items()
                    if not cfg.is_demo and n not in yaml_names}
    seen: tuple[int, str] | None = None
    while True:
        try:
            now = await version(state.engine)
            if now != seen:
                keys = state.settings.secret_keys
                rows = await list_stored(state.engine, SecretBox(keys) if keys else None)
                rows = [p for p in rows if p.name not in yaml_names]
                current = {p.name for p in rows}
                apply(state, rows, frozenset(stored_names - current))
                stored_names, seen = current, now
        except Exception:  # a bad key or a database hiccup: keep serving, retry next tick
            log.warning("stored providers: reload failed", exc_info=True)
        await asyncio.sleep(interval)
