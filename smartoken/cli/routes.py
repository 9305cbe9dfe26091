"""``smartoken routes``: the route table with live health from a running gateway
(``--url`` + an admin key or the master key), or the configured routes when no URL is given."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import click

from smartoken.config import ConfigError, load_settings


def fetch(url: str, key: str, timeout: float = 10) -> list[dict[str, Any]]:
    req = urllib.request.Request(url.rstrip("/") + "/admin/routes",
                                 headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data: list[dict[str, Any]] = json.loads(resp.read())["data"]
            return data
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise click.ClickException(f"{url}: HTTP {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise click.ClickException(f"{url}: cannot reach the gateway ({exc})") from None


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}{suffix}" if suffix else f"{value:.2f}"
    return f"{value}{suffix}"


def render(rows: list[dict[str, Any]]) -> None:
    click.echo(f"{'ROUTE':<48} {'PRI':>3} {'W':>3} {'STATE':<9} {'OK%':>5} {'P50':>7} "
               f"{'TTFT':>7} {'COOL':>6}  LAST ERROR")
    for r in rows:
        rate = r.get("success_rate")
        click.echo(
            f"{r['id']:<48} {r['priority']:>3} {r['weight']:>3} {r.get('state', '-'):<9} "
            f"{'-' if rate is None else f'{rate * 100:.0f}':>5} "
            f"{_fmt(r.get('p50_latency_ms'), 'ms'):>7} {_fmt(r.get('p50_ttft_ms'), 'ms'):>7} "
            f"{_fmt(r.get('cooldown_remaining_s') or None, 's'):>6}  {r.get('last_error') or ''}")


@click.command("routes")
@click.option("--url", default=None, help="A running gateway, e.g. http://127.0.0.1:8000.")
@click.option("--key", envvar="SMARTOKEN_MASTER_KEY", default=None,
              help="An admin API key or the master key (default: $SMARTOKEN_MASTER_KEY).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def routes_cmd(ctx: click.Context, url: str | None, key: str | None, as_json: bool) -> None:
    """Show every route: priority, weight, breaker state, success rate, latency, last error."""
    if url:
        if not key:
            raise click.UsageError("--key (or SMARTOKEN_MASTER_KEY) is needed with --url.")
        rows = fetch(url, key)
    else:
        obj = ctx.ensure_object(dict)
        try:
            settings = load_settings(obj.get("config"), data_dir=obj.get("data_dir"))
        except ConfigError as exc:
            raise click.ClickException(f"configuration error: {exc}") from None
        rows = [{"id": f"{r.model}:{r.provider}/{r.upstream_model}", "model": r.model,
                 "provider": r.provider, "upstream_model": r.upstream_model,
                 "priority": r.priority, "weight": r.weight,
                 "state": "closed" if r.enabled else "disabled"}
                for r in settings.routes]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        render(rows)
        if not url:
            click.echo("(configured routes; pass --url and --key for live health)")
