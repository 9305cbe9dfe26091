"""``smartoken catalog``: export the catalog in force, import a new one without a release.

    smartoken catalog export [--format yaml|json]     the built-in document + the latest import
    smartoken catalog import FILE [--merge] [--note]  check FILE whole, store it; running
                                                      gateways apply it within a second
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from smartoken.catalog.document import CatalogError, overlay
from smartoken.config import ConfigError, catalog_document, with_catalog


@click.group("catalog")
def catalog() -> None:
    """Export and import the model catalog (families, models, prices, sources)."""


@catalog.command("export")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True)
@click.pass_context
def export_cmd(ctx: click.Context, fmt: str) -> None:
    """Print the catalog in force: the built-in document with the latest import laid over it
    (the configuration file's models: entries still apply on top of it)."""
    from smartoken.cli.main import _run, _settings
    from smartoken.store import catalog_docs

    settings = _settings(ctx)
    _, stored = _run(settings, catalog_docs.latest)
    doc = catalog_document(settings, stored)
    if fmt == "json":
        sys.stdout.write(json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{path}: invalid YAML or JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise click.ClickException(f"{path}: must hold a mapping (families, models, ...)")
    return doc


@catalog.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--merge", is_flag=True,
              help="Lay FILE over the previous import instead of replacing it.")
@click.option("--note", default="", help="Why (kept with the import).")
@click.pass_context
def import_cmd(ctx: click.Context, file: Path, merge: bool, note: str) -> None:
    """Check FILE (YAML or JSON, the shape of `catalog export`) and make it the catalog."""
    from smartoken.cli.main import _announce, _run, _settings
    from smartoken.store import catalog_docs

    settings = _settings(ctx)
    doc = _read(file)
    try:
        if merge:
            _, current = _run(settings, catalog_docs.latest)
            doc = overlay(current or {}, doc, keep_nulls=True)
        composed = with_catalog(settings, doc, str(file))
    except (ConfigError, CatalogError) as exc:
        raise click.ClickException(f"not imported: {exc}") from None

    async def save(engine: Any) -> int:
        return await catalog_docs.save(engine, json.loads(json.dumps(doc, default=str)),
                                       "cli", note or f"smartoken catalog import {file.name}")

    doc_id = _run(settings, save)
    _announce(settings, "catalog")
    click.echo(f"catalog #{doc_id} imported: {len(composed.catalog.models)} models, "
               f"{len(composed.catalog.families)} families; running gateways apply it within "
               "a second")
