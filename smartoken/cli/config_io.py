"""``smartoken config``: move providers and their routes between the configuration file and
the database.

    smartoken config export [--secrets]        the stored providers as a configuration file
                                               (providers: and models.<id>.routes)
    smartoken config import FILE [--replace]   store FILE's providers and routes in the database
                                               (checked by the same code as `serve`); running
                                               gateways apply them within a second

Which wins: a provider defined in the configuration file is served from the file, and a stored
provider of the same name is ignored (with a warning). So moving a provider to the database is
`config import` then removing it from the file; moving it to the file is `config export`,
adding the output to the file (a file provider wins at once), then deleting the stored one.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

from smartoken.config import ConfigError, load_settings
from smartoken.store.providers import StoredProvider


@click.group("config")
def config() -> None:
    """Move providers and routes between the configuration file and the database."""


def _env_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper() + "_API_KEY"


def to_file(stored: list[StoredProvider], secrets: bool) -> dict[str, Any]:
    """Stored providers as the ``providers:`` and ``models:`` sections of a config file."""
    providers: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for p in stored:
        t = p.timeouts
        entry: dict[str, Any] = {"dialect": p.dialect, "base_url": p.base_url}
        if secrets and p.key_pool:
            entry["api_keys"] = [{"key": k, "weight": w} for k, w in p.key_pool]
        elif secrets and p.api_key:
            entry["api_key"] = p.api_key
        elif p.key_pool:
            entry["api_keys"] = [{"key_env": f"{_env_name(p.name)}_{i + 1}", "weight": w}
                                 for i, (_, w) in enumerate(p.key_pool)]
        elif p.api_key:
            entry["api_key_env"] = _env_name(p.name)
        if p.headers:
            entry["headers"] = {k: v if secrets else "<set me>" for k, v in p.headers}
        entry["timeouts"] = {"connect": t.connect, "first_byte": t.first_byte,
                             "idle": t.idle, "total": t.total}
        providers[p.name] = entry
        for r in p.routes:
            models.setdefault(r.model, {"routes": []})["routes"].append(
                {"provider": p.name, "upstream_model": r.upstream_model,
                 "priority": r.priority, "weight": r.weight,
                 "enabled": r.enabled and p.enabled})
    return {"providers": providers, "models": models}


@config.command("export")
@click.option("--secrets", is_flag=True,
              help="Write vendor keys and header values in clear (default: variable names).")
@click.pass_context
def export_cmd(ctx: click.Context, secrets: bool) -> None:
    """Print the stored providers and their routes as a configuration file."""
    from smartoken.cli.main import _run, _settings
    from smartoken.store import providers as store

    settings = _settings(ctx)
    box = _box(settings) if secrets or settings.secret_keys else None
    stored = _run(settings, lambda engine: store.list_stored(engine, box))
    head = (f"# Providers stored in the database, exported {datetime.now(UTC):%Y-%m-%d %H:%M}"
            " UTC by `smartoken config export`.\n")
    if not secrets:
        head += ("# Keys are not exported: set the variables named by api_key_env/key_env "
                 "(or run with --secrets).\n")
    sys.stdout.write(head + yaml.safe_dump(to_file(stored, secrets), sort_keys=False,
                                           allow_unicode=True))


def _box(settings: Any) -> Any:
    from smartoken.auth.secretbox import SecretBox

    if not settings.secret_keys:
        raise click.ClickException("SMARTOKEN_SECRET_KEY is not set: stored provider keys are "
                                   "encrypted under it")
    return SecretBox(settings.secret_keys)


def from_file(path: Path) -> list[StoredProvider]:
    """The providers FILE declares, with their routes, checked like `serve` checks them."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path}: cannot read: {exc}") from None
    names = list((raw or {}).get("providers") or {}) if isinstance(raw, dict) else []
    if not names:
        raise click.ClickException(f"{path}: declares no providers")
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        raise click.ClickException(f"not imported: {exc}") from None
    out = []
    for name in names:
        cfg = settings.providers[name]
        if cfg.is_demo:
            continue
        if not cfg.keys():
            raise click.ClickException(f"{path}: provider {name!r} has no key (is its "
                                       "variable set?)")
        pool = cfg.key_pool if len(cfg.key_pool) > 1 or any(w != 1 for _, w in cfg.key_pool) \
            else ()
        out.append(StoredProvider(
            name=name, dialect=cfg.dialect, base_url=cfg.base_url, api_key=cfg.api_key,
            headers=cfg.headers, timeouts=cfg.timeouts, key_pool=pool,
            routes=tuple(r for r in settings.routes if r.provider == name)))
    return out


@config.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--replace", "replace_", is_flag=True,
              help="Overwrite stored providers of the same names.")
@click.pass_context
def import_cmd(ctx: click.Context, file: Path, replace_: bool) -> None:
    """Store FILE's providers (with their keys, encrypted) and their routes."""
    from smartoken.cli.main import _announce, _run, _settings
    from smartoken.store import audit
    from smartoken.store import providers as store
    from smartoken.store.repo import Conflict

    settings = _settings(ctx)
    box = _box(settings)
    wanted = from_file(file)

    async def save(engine: Any) -> list[str]:
        current = {p.name: p for p in await store.list_stored(engine, box)}
        taken = [p.name for p in wanted if p.name in current]
        if taken and not replace_:  # checked before anything is stored
            raise Conflict(f"already stored: {', '.join(taken)} (use --replace)")
        done = []
        for p in wanted:
            before = current.get(p.name)
            if before is None:
                await store.insert_stored(engine, p, box)
            else:
                await store.update_stored(engine, replace(p, enabled=before.enabled), box)
            await audit.record(engine, "cli", "provider.update" if before else
                               "provider.create", f"provider:{p.name}",
                               before.public() if before else None, p.public())
            done.append(p.name)
        return done

    try:
        done = _run(settings, save)
    except Conflict as exc:
        raise click.ClickException(str(exc)) from None
    _announce(settings, "providers")
    click.echo(f"{len(done)} provider(s) stored: {', '.join(done)}; running gateways apply "
               "them within a second")
