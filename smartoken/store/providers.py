"""Providers stored in the database (managed through ``/admin/providers``), secrets encrypted.

A stored provider is one row of ``stored_providers``: the upstream's name, dialect and base
URL, its API key and extra headers as Fernet tokens (``auth.secretbox``), its timeouts and its
routes as JSON. At start ``with_stored_providers`` decrypts them and merges them into the
settings read from the YAML file (a name defined in the file wins, with a warning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.auth.secretbox import SecretBox, SecretKeyError
from smartoken.config import ProviderConfig, RouteConfig, Settings, Timeouts
from smartoken.logs import protect
from smartoken.store.repo import Conflict, now
from smartoken.store.schema import stored_providers

log = logging.getLogger("smartoken.providers")


@dataclass(frozen=True, slots=True)
class StoredProvider:
    """A provider as the admin API sees it: plaintext secrets, never returned to clients."""

    name: str
    dialect: str
    base_url: str
    api_key: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    routes: tuple[RouteConfig, ...] = ()
    enabled: bool = True
    key_pool: tuple[tuple[str, int], ...] = ()  # several vendor keys with weights

    def config(self) -> ProviderConfig:
        return ProviderConfig(self.name, self.dialect, self.base_url, self.api_key,
                              self.timeouts, self.headers, self.key_pool)

    def secrets(self) -> list[str | None]:
        return [self.api_key, *(k for k, _ in self.key_pool), *(v for _, v in self.headers)]

    def public(self) -> dict[str, Any]:
        """What the admin API shows: no secret, only whether one is set."""
        t = self.timeouts
        return {
            "name": self.name, "dialect": self.dialect, "base_url": self.base_url,
            "has_api_key": bool(self.api_key), "key_count": len(self.key_pool) or
            int(bool(self.api_key)), "key_weights": [w for _, w in self.key_pool],
            "header_names": [k for k, _ in self.headers],
            "timeouts": {"connect": t.connect, "first_byte": t.first_byte, "idle": t.idle,
                         "total": t.total},
            "routes": [{"model": r.model, "upstream_model": r.upstream_model,
                        "priority": r.priority, "weight": r.weight, "enabled": r.enabled}
                       for r in self.routes],
            "enabled": self.enabled,
        }


def _routes_json(p: StoredProvider) -> str:
    return orjson.dumps([{"model": r.model, "upstream_model": r.upstream_model,
                          "priority": r.priority, "weight": r.weight, "enabled": r.enabled}
                         for r in p.routes]).decode()


def _values(p: StoredProvider, box: SecretBox) -> dict[str, Any]:
    t = p.timeouts
    return {
        "dialect": p.dialect, "base_url": p.base_url,
        # A pool is stored as one encrypted JSON list (a vendor key never starts with "[").
        "api_key_enc": box.encrypt(orjson.dumps([list(k) for k in p.key_pool]).decode())
        if p.key_pool else box.encrypt(p.api_key) if p.api_key else None,
        "headers_enc": box.encrypt(orjson.dumps(dict(p.headers)).decode()) if p.headers
        else None,
        "timeouts": orjson.dumps({"connect": t.connect, "first_byte": t.first_byte,
                                  "idle": t.idle, "total": t.total}).decode(),
        "routes": _routes_json(p), "enabled": p.enabled, "updated_at": now(),
    }


def _from_row(row: Any, box: SecretBox | None) -> StoredProvider:
    name = str(row["name"])

    def open_(token: str | None, what: str) -> str | None:
        if token is None:
            return None
        if box is None:
            raise SecretKeyError(f"SMARTOKEN_SECRET_KEY is not set, but the stored provider "
                                 f"{name!r} has an encrypted {what}")
        return box.decrypt(token, f"the {what} of stored provider {name!r}")

    headers_json = open_(row["headers_enc"], "headers")
    api_key = open_(row["api_key_enc"], "API key")
    pool: tuple[tuple[str, int], ...] = ()
    if api_key is not None and api_key.startswith("["):
        pool = tuple((str(k), int(w)) for k, w in orjson.loads(api_key))
        api_key = pool[0][0] if pool else None
    t = orjson.loads(row["timeouts"]) if row["timeouts"] else {}
    return StoredProvider(
        name=name, dialect=str(row["dialect"]), base_url=str(row["base_url"]),
        api_key=api_key, key_pool=pool,
        headers=tuple(orjson.loads(headers_json).items()) if headers_json else (),
        timeouts=Timeouts(**t),
        routes=tuple(RouteConfig(r["model"], name, r["upstream_model"], r["priority"],
                                 r["weight"], r["enabled"])
                     for r in orjson.loads(row["routes"] or "[]")),
        enabled=bool(row["enabled"]),
    )


async def list_stored(engine: AsyncEngine, box: SecretBox | None) -> list[StoredProvider]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(stored_providers)
                                   .order_by(stored_providers.c.name))).mappings().all()
    return [_from_row(r, box) for r in rows]


async def insert_stored(engine: AsyncEngine, p: StoredProvider, box: SecretBox) -> None:
    async with engine.begin() as conn:
        exists = await conn.scalar(select(stored_providers.c.id)
                                   .where(stored_providers.c.name == p.name))
        if exists is not None:
            raise Conflict(f"provider {p.name!r} already exists")
        await conn.execute(insert(stored_providers).values(name=p.name, created_at=now(),
                                                           **_values(p, box)))


async def update_stored(engine: AsyncEngine, p: StoredProvider, box: SecretBox) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(update(stored_providers)
                                    .where(stored_providers.c.name == p.name)
                                    .values(**_values(p, box)))
    return bool(result.rowcount)


async def delete_stored(engine: AsyncEngine, name: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(delete(stored_providers)
                                    .where(stored_providers.c.name == name))
    return bool(result.rowcount)


async def rotate_stored(engine: AsyncEngine, box: SecretBox) -> int:
    """Re-encrypt every stored secret under the newest key; returns the rows rewritten."""
    n = 0
    async with engine.begin() as conn:
        rows = (await conn.execute(select(stored_providers))).mappings().all()
        for row in rows:
            values = {col: box.rotate(row[col], f"{col} of stored provider {row['name']!r}")
                      for col in ("api_key_enc", "headers_enc") if row[col]}
            if values:
                await conn.execute(update(stored_providers)
                                   .where(stored_providers.c.id == row["id"]).values(**values))
                n += 1
    return n


def merged(settings: Settings, stored: list[StoredProvider],
           removed: frozenset[str] = frozenset()) -> Settings:
    """``settings`` with ``stored`` providers (and their routes) replacing earlier versions of
    the same names, ``removed`` names dropped. A model that gets stored routes stops being
    served by the demo provider; a model left without routes goes back to it."""
    names = {p.name for p in stored} | set(removed)
    providers = {k: v for k, v in settings.providers.items() if k not in names}
    routes = [r for r in settings.routes if r.provider not in names]
    for p in stored:
        if p.enabled:
            providers[p.name] = p.config()
            routes.extend(p.routes)
    real = {r.model for r in routes
            if r.provider in providers and not providers[r.provider].is_demo}
    routes = [r for r in routes if r.model not in real or not
              (r.provider in providers and providers[r.provider].is_demo)]
    demo = providers.get("demo")
    if demo is not None and demo.is_demo:
        routed = {r.model for r in routes}
        for spec in settings.catalog.models.values():
            if spec.id not in routed and not spec.auto_variants:
                routes.append(RouteConfig(spec.id, "demo", spec.id, priority=0))
    return replace(settings, providers=providers, routes=tuple(routes))


async def with_stored_providers(engine: AsyncEngine, settings: Settings) -> Settings:
    """Load the stored providers at start; a name the YAML file defines keeps the file's."""
    box = SecretBox(settings.secret_keys) if settings.secret_keys else None
    stored = []
    for p in await list_stored(engine, box):
        if p.name in settings.providers and not settings.providers[p.name].is_demo:
            log.warning("stored provider %r is ignored: the configuration file defines a "
                        "provider of the same name", p.name)
            continue
        stored.append(p)
    if not stored:
        return settings
    protect(*(secret for p in stored for secret in p.secrets()))
    return merged(settings, stored)
