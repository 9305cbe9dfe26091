"""Stored providers and the imported catalog, live: applying a change to a running gateway,
and following changes made by other processes (another worker, another replica, the CLI).

The admin API applies its own change at once (``apply``); every process also polls the
``stored_providers`` and ``catalog_documents`` tables once a second (``follow``, woken at once
by a change notice over Redis) and reloads when their version moves, so ``--workers N`` and
replicas converge within about a second. A new catalog replaces ``state.catalog`` whole:
requests already running keep the model specs and price snapshot they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.auth.secretbox import SecretBox
from smartoken.config import ConfigError, Settings, with_catalog
from smartoken.logs import protect
from smartoken.providers.factory import make_provider
from smartoken.store import catalog_docs
from smartoken.store.providers import StoredProvider, list_stored, merged
from smartoken.store.schema import stored_providers

log = logging.getLogger("smartoken.providers")
POLL_INTERVAL = 1.0


def apply(state: Any, stored: list[StoredProvider], removed: frozenset[str] = frozenset(),
          base: Settings | None = None) -> None:
    """Serve ``stored`` (new versions of those providers) and stop serving ``removed``, over
    ``base`` (a newly composed catalog and file routes) or the current settings. ``state`` is
    the ``AppState``; adapters share its session, so nothing needs closing."""
    settings = merged(base or state.settings, stored, removed)
    for name in removed:
        state.providers.pop(name, None)
    for p in stored:
        state.providers.pop(p.name, None)
        if p.enabled and state.session is not None:
            protect(*p.secrets())
            state.providers[p.name] = make_provider(p.config(), state.session)
    state.settings = settings
    state.catalog = settings.catalog
    state.router.set_routes(settings.routes)


def catalog_base(config: Settings, doc: dict[str, Any] | None, doc_id: int) -> Settings:
    """The file's settings with the imported catalog ``doc`` composed in."""
    return with_catalog(config, doc, f"<imported catalog #{doc_id}>")


async def version(engine: AsyncEngine) -> tuple[int, str]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(func.count(), func.max(stored_providers.c.updated_at))
                                  )).one()
    return int(row[0]), str(row[1])


async def follow(state: Any, config: Settings, interval: float = POLL_INTERVAL) -> None:
    """Reload the stored providers and the imported catalog whenever their tables changed
    (first: at once, to catch a change made between start-up and now). ``config`` is the
    settings before the stored providers were merged in: its provider names are the
    configuration file's, which win. ``state.wake`` (set by a change notice) ends the wait."""
    yaml_names = {n for n, cfg in config.providers.items() if not cfg.is_demo}
    stored_names = {n for n, cfg in state.settings.providers.items()
                    if not cfg.is_demo and n not in yaml_names}
    seen: tuple[int, str] | None = None
    seen_catalog = await catalog_docs.version(state.engine)
    while True:
        try:
            now = await version(state.engine)
            catalog_now = await catalog_docs.version(state.engine)
            if now != seen or catalog_now != seen_catalog:
                base = None
                if catalog_now != seen_catalog:
                    doc_id, doc = await catalog_docs.latest(state.engine)
                    try:
                        base = catalog_base(config, doc, doc_id)
                    except ConfigError as exc:  # keep serving the catalog in force
                        log.error("imported catalog #%s not applied: %s", doc_id, exc)
                keys = state.settings.secret_keys
                rows = await list_stored(state.engine, SecretBox(keys) if keys else None)
                rows = [p for p in rows if p.name not in yaml_names]
                current = {p.name for p in rows}
                apply(state, rows, frozenset(stored_names - current), base)
                stored_names, seen, seen_catalog = current, now, catalog_now
        except Exception:  # a bad key or a database hiccup: keep serving, retry next tick
            log.warning("stored providers: reload failed", exc_info=True)
        wake: asyncio.Event = state.wake
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), interval)
        wake.clear()


async def apply_catalog(state: Any, doc: dict[str, Any] | None, doc_id: int) -> None:
    """Serve the catalog ``doc`` in this process now (the admin API's import); the stored
    providers are laid over it again. Raises ``ConfigError`` when the file's ``models:``
    entries or routes do not agree with it."""
    config: Settings = state.config
    base = catalog_base(config, doc, doc_id)
    yaml_names = {n for n, cfg in config.providers.items() if not cfg.is_demo}
    keys = state.settings.secret_keys
    rows = [p for p in await list_stored(state.engine, SecretBox(keys) if keys else None)
            if p.name not in yaml_names]
    apply(state, rows, frozenset(), base)
