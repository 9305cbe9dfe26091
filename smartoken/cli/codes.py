"""``smartoken codes create|list|revoke``: redemption codes from the command line.

Like ``keys`` and ``wallet``, the commands work on the database directly (no gateway needs to
run). ``create`` prints each code in full, this once; only their hashes are stored.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from smartoken.config import ConfigError, load_settings
from smartoken.errors import GatewayError
from smartoken.money import MoneyError, format_usd, parse_usd


def _run(ctx: click.Context, fn: Any) -> Any:
    from smartoken.store.db import make_engine, migrate

    obj = ctx.find_root().ensure_object(dict)
    try:
        settings = load_settings(obj.get("config"), data_dir=obj.get("data_dir"),
                                 database_url=obj.get("database_url"))
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None

    async def main() -> Any:
        engine = make_engine(settings.db_url)
        try:
            await migrate(engine)
            return await fn(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None


@click.group("codes")
def codes() -> None:
    """Generate, list and revoke redemption codes."""


@codes.command("create")
@click.option("--count", type=int, required=True, help="How many codes (1-1000).")
@click.option("--amount", required=True, help="USD each code is worth (exact, e.g. 10 or 2.50).")
@click.option("--batch", default="", help="A label for the batch.")
@click.option("--expires-in-days", type=int, default=None, help="Expire after this many days.")
@click.pass_context
def codes_create(ctx: click.Context, count: int, amount: str, batch: str,
                 expires_in_days: int | None) -> None:
    """Print COUNT new codes, one a line (shown this once)."""
    from smartoken.billing import codes as billing

    try:
        micro = parse_usd(amount)
    except MoneyError as exc:
        raise click.BadParameter(str(exc)) from None
    if expires_in_days is not None and not 0 < expires_in_days <= 36_500:
        raise click.BadParameter("--expires-in-days must be from 1 to 36500")
    if len(batch) > 100 or any(ord(c) < 32 for c in batch):
        raise click.BadParameter("--batch: at most 100 characters, no control characters")
    expires = None if expires_in_days is None else \
        datetime.now(UTC) + timedelta(days=expires_in_days)

    async def go(engine: Any) -> Any:
        return await billing.create_batch(engine, count, micro, batch=batch,
                                          expires_at=expires, actor="cli")

    made = _run(ctx, go)
    for code in made.codes:
        click.echo(code)


@codes.command("list")
@click.option("--batch", default=None, help="Only this batch.")
@click.option("--limit", default=100, show_default=True)
@click.pass_context
def codes_list(ctx: click.Context, batch: str | None, limit: int) -> None:
    from smartoken.api.codes import code_status
    from smartoken.store import codes as store

    rows = _run(ctx, lambda engine: store.list_codes(engine, batch=batch,
                                                       limit=max(1, min(limit, 10_000))))
    for r in rows:
        exp = f" expires {r['expires_at']:%Y-%m-%d}" if r["expires_at"] else ""
        who = f" by account {r['redeemed_by']}" if r["redeemed_by"] else ""
        click.echo(f"{r['id']:>6}  …{r['hint']}  ${format_usd(r['amount_micro']):>14}  "
                   f"{code_status(r):<8} {r['batch'] or '-'}{exp}{who}")


@codes.command("revoke")
@click.argument("code_id", type=int, required=False)
@click.option("--batch", default=None, help="Revoke every unredeemed code of this batch.")
@click.pass_context
def codes_revoke(ctx: click.Context, code_id: int | None, batch: str | None) -> None:
    """Revoke code CODE_ID, or a whole --batch."""
    from smartoken.store import codes as store

    if (code_id is None) == (batch is None):
        raise click.UsageError("give a CODE_ID or --batch (one of them)")
    n = _run(ctx, lambda engine: store.revoke(engine, code_id=code_id, batch=batch))
    click.echo(f"{n} code(s) revoked")
