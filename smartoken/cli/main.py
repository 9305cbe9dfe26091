"""The ``smartoken`` command: a click group whose default command is ``serve``."""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from smartoken.cli.ops import multiprocess_metrics_dir, ops_options, secrets
from smartoken.cli.routes import routes_cmd
from smartoken.config import ConfigError, Settings, load_settings
from smartoken.logs import configure_logging, secrets_of
from smartoken.money import MoneyError, format_usd, parse_usd

T = TypeVar("T")


class DefaultGroup(click.Group):
    """``smartoken`` alone (or with serve's options) runs ``serve``."""

    GROUP_OPTIONS = frozenset({"--config", "-c", "--data-dir", "--database-url"})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        i = 0
        while i < len(args) and args[i] in self.GROUP_OPTIONS:
            i += 2
        while i < len(args) and args[i].split("=", 1)[0] in self.GROUP_OPTIONS:
            i += 1
        rest = args[i:]
        if not rest or (rest[0].startswith("-") and rest[0] not in ("--help", "--version")):
            args = [*args[:i], "serve", *rest]
        return super().parse_args(ctx, args)


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    try:
        return load_settings(obj.get("config"), data_dir=obj.get("data_dir"),
                             database_url=obj.get("database_url"))
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


def _run(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    from smartoken.store.db import make_engine, migrate

    async def main() -> T:
        engine = make_engine(settings.db_url)
        try:
            await migrate(engine)
            return await fn(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _usd(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_usd(value)
    except MoneyError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(cls=DefaultGroup)
@click.version_option(package_name="smartoken")
@click.option("--config", "-c", type=click.Path(path_type=Path, dir_okay=False),
              envvar="SMARTOKEN_CONFIG", help="YAML configuration file.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              envvar="SMARTOKEN_DATA_DIR", help="Folder for the embedded SQLite database.")
@click.option("--database-url", envvar="SMARTOKEN_DATABASE_URL",
              help="sqlite+aiosqlite:///… or postgresql://… (default: SQLite in the data dir).")
@click.pass_context
def main(ctx: click.Context, config: Path | None, data_dir: Path | None,
         database_url: str | None) -> None:
    """SmarToken: an OpenAI-compatible gateway for the Chinese model families."""
    ctx.ensure_object(dict).update(config=config, data_dir=data_dir, database_url=database_url)


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8000).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.option("--log-level", default=None, help="debug, info, warning or error.")
@click.option("--migrate/--no-migrate", default=True, show_default=True,
              help="Upgrade the database schema at start.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None,
          log_level: str | None, migrate: bool) -> None:
    """Run the gateway (the default command)."""
    import uvicorn

    from smartoken.app import create_app

    settings = _settings(ctx)
    host = host or settings.host
    port = port if port is not None else settings.port
    workers = workers or settings.workers
    level = (log_level or settings.log_level).lower()
    configure_logging(level, secrets_of(settings))
    ops = ops_options(settings)
    multiprocess_metrics_dir(settings, workers)
    if not migrate:
        _require_schema(settings)
    click.echo(f"SmarToken listening on http://{host}:{port}  (OpenAI base_url: "
               f"http://{host}:{port}/v1; console: http://{host}:{port}/console/; database: "
               f"{_safe_url(settings.db_url)})", err=True)
    if workers > 1:
        from smartoken.store.db import make_engine
        from smartoken.store.db import migrate as do_migrate

        if migrate:
            async def _m() -> None:
                engine = make_engine(settings.db_url)
                await do_migrate(engine)
                await engine.dispose()

            asyncio.run(_m())
        if settings.config_path:
            os.environ["SMARTOKEN_CONFIG"] = str(settings.config_path)
        os.environ["SMARTOKEN_DATA_DIR"] = str(settings.data_dir)
        os.environ["SMARTOKEN_WORKERS"] = str(workers)
        if settings.database_url:
            os.environ["SMARTOKEN_DATABASE_URL"] = settings.database_url
        os.environ["SMARTOKEN_LOG_LEVEL"] = level
        from smartoken.cli.preload import fork_workers

        fork_workers()
        uvicorn.run("smartoken.app:app_from_env", factory=True, host=host, port=port,
                    workers=workers, loop="uvloop", http="httptools", log_level=level,
                    access_log=False, **ops)
        return
    from smartoken.server import run

    app = create_app(settings, run_migrations=migrate, freeze_heap=True)
    run(app, drain_delay=settings.shutdown_delay_s, host=host, port=port, loop="uvloop",
        http="httptools", log_level=level, access_log=False, lifespan="on", **ops)


def _require_schema(settings: Settings) -> None:
    """``serve --no-migrate``: refuse, in one clear line, a database whose schema is not this
    program's (never migrated, or older, or newer)."""
    from smartoken.store.db import SchemaOutOfDate, check_schema, make_engine

    async def go() -> None:
        engine = make_engine(settings.db_url)
        try:
            await check_schema(engine)
        finally:
            await engine.dispose()

    try:
        asyncio.run(go())
    except SchemaOutOfDate as exc:
        raise click.ClickException(f"{_safe_url(settings.db_url)}: {exc}") from None


def _safe_url(url: str) -> str:
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@main.command("migrate")
@click.pass_context
def migrate_cmd(ctx: click.Context) -> None:
    """Upgrade the database schema to this version's head."""
    _run(_settings(ctx), lambda engine: asyncio.sleep(0))
    click.echo("database schema is up to date")


main.add_command(secrets)


# ------------------------------------------------------------------ accounts


@main.group()
def accounts() -> None:
    """Create and list accounts."""


@accounts.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the account the admin role.")
@click.option("--password", default=None, help="Console password (prompted if omitted).")
@click.pass_context
def accounts_create(ctx: click.Context, name: str, admin: bool, password: str | None) -> None:
    from smartoken.auth.passwords import hash_password
    from smartoken.store import repo

    pw = hash_password(password) if password else None

    async def go(engine: Any) -> int:
        return await repo.create_account(engine, name, "admin" if admin else "user", pw)

    try:
        account_id = _run(_settings(ctx), go)
    except repo.Conflict as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"account {name} created (id {account_id})")


@accounts.command("list")
@click.pass_context
def accounts_list(ctx: click.Context) -> None:
    from smartoken.store import repo

    for a in _run(_settings(ctx), repo.list_accounts):
        click.echo(f"{a['id']:>4}  {a['name']:<24} {a['role']:<6} "
                   f"balance ${format_usd(a['balance_micro'])}")


async def _account_id(engine: Any, name: str) -> int:
    from smartoken.store import repo

    acct = await repo.get_account(engine, name=name)
    if acct is None:
        raise click.ClickException(f"no account named {name!r}")
    return int(acct["id"])


# ------------------------------------------------------------------ wallet


@main.group()
def wallet() -> None:
    """Credit wallets and read their transactions."""


@wallet.command("credit")
@click.argument("account")
@click.argument("amount")
@click.option("--reason", default="", help="Why (kept in the ledger).")
@click.option("--adjust", is_flag=True, help="Record as an adjustment (may be negative).")
@click.pass_context
def wallet_credit(ctx: click.Context, account: str, amount: str, reason: str,
                  adjust: bool) -> None:
    """Add AMOUNT USD (exact, e.g. 25 or 0.50) to ACCOUNT's wallet."""
    from smartoken.store import repo

    micro = _usd(amount)
    assert micro is not None
    if micro <= 0 and not adjust:
        raise click.BadParameter("a credit must be positive; use --adjust for corrections")

    async def go(engine: Any) -> tuple[int, int]:
        aid = await _account_id(engine, account)
        return await repo.credit_wallet(engine, aid, micro, kind="adjustment" if adjust
                                        else "credit", actor="cli", reason=reason)

    txn, balance = _run(_settings(ctx), go)
    click.echo(f"transaction {txn}: balance of {account} is now ${format_usd(balance)}")


@wallet.command("show")
@click.argument("account")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def wallet_show(ctx: click.Context, account: str, limit: int) -> None:
    from smartoken.store import repo

    async def go(engine: Any) -> tuple[int, list[dict[str, Any]]]:
        aid = await _account_id(engine, account)
        return (await repo.wallet_balance(engine, aid),
                await repo.list_transactions(engine, aid, limit))

    balance, txns = _run(_settings(ctx), go)
    click.echo(f"balance ${format_usd(balance)}")
    for t in txns:
        click.echo(f"{t['id']:>6}  {t['created_at']:%Y-%m-%d %H:%M:%S}  {t['kind']:<10} "
                   f"{format_usd(t['amount_micro']):>14}  {t['reason']}")


# ------------------------------------------------------------------ keys


@main.group()
def keys() -> None:
    """Create, list, update and revoke API keys."""


@keys.command("create")
@click.option("--account", "account", required=True, help="Account name.")
@click.option("--name", default="", help="A label for the key.")
@click.option("--families", default=None, help="Comma-separated model families (default all).")
@click.option("--daily-budget", default=None, help="USD per day.")
@click.option("--monthly-budget", default=None, help="USD per month.")
@click.option("--rpm", type=int, default=None, help="Requests per minute.")
@click.option("--tpm", type=int, default=None, help="Tokens per minute.")
@click.option("--expires-in-days", type=int, default=None)
@click.option("--admin", "admin", is_flag=True, default=False,
              help="An admin key (admin API): an admin account's, with no restriction.")
@click.pass_context
def keys_create(ctx: click.Context, account: str, name: str, families: str | None,
                daily_budget: str | None, monthly_budget: str | None, rpm: int | None,
                tpm: int | None, expires_in_days: int | None, admin: bool) -> None:
    """Create a key; the secret is printed once and never stored."""
    from smartoken.auth.keys import generate_key
    from smartoken.store import repo

    settings = _settings(ctx)
    fams = [f.strip() for f in families.split(",") if f.strip()] if families else None
    for f in fams or []:
        if f not in settings.catalog.families:
            raise click.BadParameter(f"unknown family {f!r}; known: "
                                     f"{', '.join(sorted(settings.catalog.families))}")
    fields = repo.KeyFields(
        name=name, families=fams, daily_budget_micro=_usd(daily_budget),
        monthly_budget_micro=_usd(monthly_budget), rpm=rpm, tpm=tpm,
        expires_at=datetime.now(UTC) + timedelta(days=expires_in_days)
        if expires_in_days else None, admin=admin,
    )
    if admin and (fams or fields.daily_budget_micro is not None or rpm or tpm or
                  fields.monthly_budget_micro is not None or expires_in_days):
        raise click.BadParameter("an admin key cannot be restricted (families, budgets, rpm, "
                                 "tpm, expiry)", param_hint="--admin")
    secret, prefix, digest = generate_key()

    async def go(engine: Any) -> int:
        aid = await _account_id(engine, account)
        if admin:
            row = await repo.get_account(engine, account_id=aid)
            if row is None or row["role"] != "admin":
                raise click.BadParameter(f"account {account!r} is not an admin",
                                         param_hint="--admin")
        return await repo.insert_key(engine, aid, prefix, digest, fields)

    key_id = _run(settings, go)
    click.echo(f"key {key_id} ({prefix}…) created for {account}. Its secret, shown only once:",
               err=True)
    click.echo(secret)


@keys.command("list")
@click.option("--account", default=None)
@click.pass_context
def keys_list(ctx: click.Context, account: str | None) -> None:
    from smartoken.store import repo

    async def go(engine: Any) -> list[dict[str, Any]]:
        aid = await _account_id(engine, account) if account else None
        return await repo.list_keys(engine, aid)

    for k in _run(_settings(ctx), go):
        state = "revoked" if k["revoked_at"] else "active"
        click.echo(f"{k['id']:>4}  {k['prefix']}…  {k['name']:<20} {state:<8} "
                   f"families={k['families'] or 'all'} daily={_opt(k['daily_budget_micro'])} "
                   f"monthly={_opt(k['monthly_budget_micro'])}")


def _opt(micro: int | None) -> str:
    return "-" if micro is None else "$" + format_usd(micro)


@keys.command("revoke")
@click.argument("key_id", type=int)
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: int) -> None:
    from smartoken.store import repo

    ok = _run(_settings(ctx), lambda e: repo.update_key(e, key_id,
                                                         {"revoked_at": datetime.now(UTC)}))
    if not ok:
        raise click.ClickException(f"no key {key_id}")
    _announce(_settings(ctx), "keys")
    click.echo(f"key {key_id} revoked")


_CLEAR = "none"


@keys.command("update")
@click.argument("key_id", type=int)
@click.option("--name", default=None, help="A new label.")
@click.option("--families", default=None, help="Comma-separated families, or 'none' for all.")
@click.option("--daily-budget", default=None, help="USD per day, or 'none'.")
@click.option("--monthly-budget", default=None, help="USD per month, or 'none'.")
@click.option("--rpm", default=None, help="Requests per minute, or 'none'.")
@click.option("--tpm", default=None, help="Tokens per minute, or 'none'.")
@click.pass_context
def keys_update(ctx: click.Context, key_id: int, name: str | None, families: str | None,
                daily_budget: str | None, monthly_budget: str | None, rpm: str | None,
                tpm: str | None) -> None:
    """Change a key's budgets, limits, families or name; running gateways apply it within
    a second."""
    from smartoken.store import repo

    settings = _settings(ctx)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name
    if families is not None:
        fams = None if families == _CLEAR else sorted(
            {f.strip() for f in families.split(",") if f.strip()})
        for f in fams or []:
            if f not in settings.catalog.families:
                raise click.BadParameter(f"unknown family {f!r}", param_hint="--families")
        values["families"] = fams
    for column, raw in (("daily_budget_micro", daily_budget),
                        ("monthly_budget_micro", monthly_budget)):
        if raw is not None:
            values[column] = None if raw == _CLEAR else _usd(raw)
    for column, raw in (("rpm", rpm), ("tpm", tpm)):
        if raw is not None:
            if raw != _CLEAR and (not raw.isdigit() or int(raw) <= 0):
                raise click.BadParameter("a positive integer or 'none'", param_hint=f"--{column}")
            values[column] = None if raw == _CLEAR else int(raw)
    if not values:
        raise click.UsageError("nothing to change")
    if not _run(settings, lambda e: repo.update_key(e, key_id, values)):
        raise click.ClickException(f"no key {key_id}")
    click.echo(f"key {key_id} updated")
def _announce(settings: Settings, what: str) -> None:
    """Tell running replicas at once (Redis pub/sub); they also poll the database each second."""
    if not settings.redis_url:
        return
    from smartoken.cluster import bus
    from smartoken.cluster.options import ClusterOptions
    from smartoken.cluster.redis_pool import connect

    async def go() -> None:
        redis = connect(settings.redis_url or "")
        try:
            await bus.announce(redis, ClusterOptions.from_env().prefix, what)
        finally:
            await redis.aclose()

    asyncio.run(go())


# ------------------------------------------------------------------ usage


@main.command("usage")
@click.option("--account", default=None)
@click.option("--key", "key_id", type=int, default=None)
@click.option("--model", default=None)
@click.option("--status", default=None)
@click.option("--limit", default=50, show_default=True)
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV to standard output.")
@click.pass_context
def usage(ctx: click.Context, account: str | None, key_id: int | None, model: str | None,
          status: str | None, limit: int, as_csv: bool) -> None:
    """Read usage records."""
    from smartoken.store import repo

    async def go(engine: Any) -> list[dict[str, Any]]:
        aid = await _account_id(engine, account) if account else None
        return await repo.query_usage(engine, repo.UsageFilter(
            account_id=aid, key_id=key_id, model=model, status=status, limit=limit))

    rows = _run(_settings(ctx), go)
    if as_csv:
        writer = csv.writer(sys.stdout)
        cols = list(rows[0].keys()) if rows else []
        writer.writerow(cols)
        for r in rows:
            writer.writerow([r[c] for c in cols])
        return
    for r in rows:
        click.echo(f"{r['created_at']:%Y-%m-%d %H:%M:%S} {r['id']} {r['requested_model']:<18} "
                   f"{r['status']:<14} in={r['prompt_tokens']} out={r['completion_tokens']} "
                   f"${format_usd(r['cost_micro'])}{' (est.)' if r['usage_estimated'] else ''}")


def _register_files() -> None:
    from smartoken.cli.catalog import catalog
    from smartoken.cli.codes import codes
    from smartoken.cli.config_io import config
    from smartoken.cli.files import files

    main.add_command(files)
    main.add_command(catalog)
    main.add_command(codes)
    main.add_command(config)


_register_files()
main.add_command(routes_cmd)
