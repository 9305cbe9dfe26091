"""Operations pieces of the CLI: uvicorn options from the settings, the metrics folder for
several workers, and ``smartoken secrets`` (generate a master key, rotate stored secrets)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import click

from smartoken.auth.secretbox import ENV, SecretBox, SecretKeyError, generate_key
from smartoken.config import ConfigError, Settings, load_settings
from smartoken.metrics import MULTIPROC_ENV, prepare_multiprocess_dir


def ops_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options: graceful-shutdown grace, h11's header limit, logging left to us."""
    return {"timeout_graceful_shutdown": settings.shutdown_grace_s,
            "h11_max_incomplete_event_size": settings.max_header_bytes,
            "log_config": None}


def multiprocess_metrics_dir(settings: Settings, workers: int) -> str | None:
    """Before workers start: the folder prometheus-client's multiprocess mode writes to
    (``PROMETHEUS_MULTIPROC_DIR`` if set, else ``<data dir>/metrics`` when ``workers`` > 1),
    emptied of the last run's files. None: single process, plain in-memory metrics."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path and workers <= 1:
        return None
    path = path or str((settings.data_dir / "metrics").resolve())
    prepare_multiprocess_dir(path)
    os.environ[MULTIPROC_ENV] = path
    return path


def _settings(ctx: click.Context) -> Settings:
    obj = (ctx.find_root().obj or {})
    try:
        return load_settings(obj.get("config"), data_dir=obj.get("data_dir"),
                             database_url=obj.get("database_url"))
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


@click.group()
def secrets() -> None:
    """Master key for provider secrets stored in the database."""


@secrets.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new random master key (for SMARTOKEN_SECRET_KEY)."""
    click.echo(generate_key())


@secrets.command("rotate")
@click.pass_context
def secrets_rotate(ctx: click.Context) -> None:
    """Re-encrypt every stored secret under the first key of SMARTOKEN_SECRET_KEY.

    Rotation: set SMARTOKEN_SECRET_KEY="<new>,<old>", run this, restart the gateway, then
    remove <old>."""
    from smartoken.store.db import make_engine, migrate
    from smartoken.store.providers import rotate_stored

    settings = _settings(ctx)
    try:
        box = SecretBox(settings.secret_keys)
    except SecretKeyError as exc:
        raise click.ClickException(str(exc)) from None

    async def go() -> int:
        engine = make_engine(settings.db_url)
        try:
            await migrate(engine)
            return await rotate_stored(engine, box)
        finally:
            await engine.dispose()

    try:
        n = asyncio.run(go())
    except SecretKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"re-encrypted the secrets of {n} stored provider(s) under the first key of {ENV}")


__all__ = ["multiprocess_metrics_dir", "ops_options", "secrets"]
