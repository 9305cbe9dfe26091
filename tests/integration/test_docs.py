"""The documentation: the API reference matches the OpenAPI document, and every link resolves
inside the repository (a README link to a file outside it was a defect of issue 17)."""

from __future__ import annotations

import re
from pathlib import Path

from smartoken.api.openapi import document
from smartoken.api.openapi.markdown import render

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _pages() -> list[Path]:
    docs = sorted((ROOT / "docs").glob("*.md"))
    return [ROOT / "README.md", ROOT / "bench" / "RESULTS.md", *docs]


def test_api_reference_is_generated_from_the_openapi_document() -> None:
    on_disk = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert on_disk == render(document()), "docs/api.md is stale: run `make docs`"


def test_every_relative_link_resolves_inside_the_repository() -> None:
    bad: list[str] = []
    for page in _pages():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                bad.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not bad, bad


def test_readme_keeps_the_two_set_up_commands_and_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make serve" in readme and "make test" in readme
    assert "## Reliability" in readme
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, page.name
    assert "../" not in readme
