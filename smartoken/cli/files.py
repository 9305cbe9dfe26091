"""``smartoken files upload|list|rm``: operators' access to the Files API.

The commands work on the database and the blob store directly (like ``keys`` and ``wallet``),
with the same checks, limits and extraction as ``POST /v1/files``; no gateway needs to be
running. ``--account`` names the owning account (``admin`` by default for uploads). Scripts
can talk to a running gateway through the HTTP API instead (any OpenAI SDK).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
import orjson

from smartoken.config import ConfigError, Settings, load_settings
from smartoken.errors import GatewayError


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().ensure_object(dict)
    try:
        return load_settings(obj.get("config"), data_dir=obj.get("data_dir"),
                             database_url=obj.get("database_url"))
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


def _run(ctx: click.Context, fn: Any) -> Any:
    from smartoken.files.service import Files
    from smartoken.store.db import make_engine, migrate

    settings = _settings(ctx)

    async def main() -> Any:
        engine = make_engine(settings.db_url)
        files = Files.from_settings(settings)
        try:
            await migrate(engine)
            return await fn(engine, files)
        finally:
            files.close()
            await engine.dispose()

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        raise click.ClickException(f"{exc.message} ({exc.code})") from None


async def _account_id(engine: Any, name: str) -> int:
    from smartoken.store import repo

    acct = await repo.get_account(engine, name=name)
    if acct is None:
        raise click.ClickException(f"no account named {name!r}")
    return int(acct["id"])


def _line(f: dict[str, Any]) -> str:
    return (f"{f['id']}  {f['purpose']:<12} {f['bytes']:>12}  {f['status']:<9} "
            f"{f['filename']}")


@click.group("files")
def files() -> None:
    """Upload, list and remove files of the Files API."""


@files.command("upload")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--account", default="admin", show_default=True, help="Owning account.")
@click.option("--purpose", default="file-extract", show_default=True,
              type=click.Choice(["file-extract", "assistants", "batch", "user_data"]))
@click.option("--name", default=None, help="File name to store (default: the path's name).")
@click.option("--json", "as_json", is_flag=True, help="Print the file object as JSON.")
@click.pass_context
def upload(ctx: click.Context, path: Path, account: str, purpose: str, name: str | None,
           as_json: bool) -> None:
    """Upload PATH for ACCOUNT; prints the new file id."""

    async def go(engine: Any, service: Any) -> dict[str, Any]:
        aid = await _account_id(engine, account)
        with path.open("rb") as src:
            row = await service.create(engine, account_id=aid, key_id=None,
                                       filename=name or path.name, purpose=purpose, src=src)
        return dict(row.to_api())

    f = _run(ctx, go)
    click.echo(orjson.dumps(f).decode() if as_json else _line(f))


@files.command("list")
@click.option("--account", default=None, help="Only this account's files (default: all).")
@click.option("--purpose", default=None)
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON file object per line.")
@click.pass_context
def list_cmd(ctx: click.Context, account: str | None, purpose: str | None, limit: int,
             as_json: bool) -> None:
    """List files, newest first."""
    from smartoken.files.records import page

    async def go(engine: Any, service: Any) -> list[tuple[int, dict[str, Any]]]:
        aid = await _account_id(engine, account) if account else None
        rows, _ = await page(engine, aid, purpose=purpose, limit=limit)
        return [(r.account_id, r.to_api()) for r in rows]

    for aid, f in _run(ctx, go):
        click.echo(orjson.dumps({**f, "account_id": aid}).decode() if as_json
                   else f"{_line(f)}  (account {aid})")


@files.command("rm")
@click.argument("file_ids", nargs=-1, required=True)
@click.option("--account", default=None, help="Refuse ids that belong to another account.")
@click.pass_context
def rm(ctx: click.Context, file_ids: tuple[str, ...], account: str | None) -> None:
    """Delete files (their bytes too, unless another file has the same content)."""

    async def go(engine: Any, service: Any) -> list[str]:
        aid = await _account_id(engine, account) if account else None
        return [(await service.delete(engine, aid, fid)).id for fid in file_ids]

    for fid in _run(ctx, go):
        click.echo(f"deleted {fid}")
