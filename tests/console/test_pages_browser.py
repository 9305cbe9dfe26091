"""Every console page in Chromium, in English and Simplified Chinese, light and dark (issue 17):
it renders in the browser's language and colour scheme with no script error, and axe-core
finds no serious or critical accessibility violation (WCAG 2 A/AA rules)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import LAPTOP, add_user
from tests.console.inproc_console import InprocConsole

AXE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "smartoken-tests/axe"
AXE = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
PW = "pw-pages-1234567"
PAGES = ("/console/", "/console/keys", "/console/usage", "/console/wallet",
         "/console/playground", "/console/models", "/console/models/kimi-k2",
         "/console/admin/routes", "/console/admin/accounts", "/console/files",
         "/console/admin/platform", "/console/admin/providers", "/console/admin/codes",
         "/console/wallet/statements",
         f"/console/wallet/statements/{datetime.now(UTC):%Y-%m}")
MARKERS = {"en-US": "Dashboard", "zh-CN": "仪表盘"}


@pytest.fixture(scope="module")
def axe_js() -> str:
    """axe-core from npm, installed once outside the checkout (the console has no CDN)."""
    if not AXE.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm not installed: axe-core unavailable")
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix",
                        str(AXE_DIR), "axe-core@4"], check=True, timeout=300)
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def pages_gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InprocConsole]:
    gw = InprocConsole(tmp_path_factory.mktemp("pages")).start()
    add_user(gw, "ada", PW, role="admin", credit="12.5")
    client = gw.client(gw.key(account="ada", name="backend"))
    for model in ("kimi-k2", "deepseek-chat"):
        client.chat.completions.create(model=model, max_tokens=12,
                                       messages=[{"role": "user", "content": "hello"}])
    gw.wait_usage(2)
    yield gw
    gw.stop()


def _signed_in(browser: Browser, gw: InprocConsole, locale: str, scheme: str) -> Page:
    ctx = browser.new_context(base_url=gw.base_url, viewport=LAPTOP, locale=locale,
                              color_scheme=scheme, bypass_csp=True,  # to inject axe
                              extra_http_headers={"accept-language": locale})
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    page.goto("/console/login")
    page.fill("input[name=name]", "ada")
    page.fill("input[name=password]", PW)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    return page


def _luminance(rgb: str) -> float:
    r, g, b = (int(x) for x in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_every_page_in_language_and_scheme_is_accessible(
        browser: Browser, pages_gw: InprocConsole, axe_js: str, locale: str,
        scheme: str, shots: Path) -> None:
    page = _signed_in(browser, pages_gw, locale, scheme)
    problems: list[Any] = []
    try:
        for path in PAGES:
            page.goto(path)
            page.wait_for_load_state("load")
            assert page.locator("html").get_attribute("lang") == locale.replace("-US", "")
            assert MARKERS[locale] in page.locator("nav").inner_text()
            bg = page.evaluate("getComputedStyle(document.querySelector('.main')).backgroundColor"
                               " || getComputedStyle(document.body).backgroundColor")
            main_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
            lum = _luminance(main_bg)
            assert (lum < 0.25) if scheme == "dark" else (lum > 0.75), (path, bg, main_bg)
            page.add_script_tag(content=axe_js)
            result = page.evaluate("""async () => {
                const r = await axe.run(document, {runOnly: {type: 'tag',
                    values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
                return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => ({id: v.id, impact: v.impact,
                                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
            }""")
            if result:
                problems.append((path, result))
            if path in ("/console/", "/console/playground"):
                name = "dashboard" if path == "/console/" else "playground"
                page.screenshot(path=str(shots / f"console-{name}-{locale}-{scheme}.png"))
        assert not problems, problems
        assert not page.js_errors  # type: ignore[attr-defined]
    finally:
        page.context.close()


def test_theme_toggle_sticks_across_pages(browser: Browser, pages_gw: InprocConsole) -> None:
    page = _signed_in(browser, pages_gw, "en-US", "light")
    try:
        page.click("#theme-toggle")
        assert page.locator("html").get_attribute("data-theme") == "dark"
        page.goto("/console/usage")  # rendered dark by the server from the cookie
        assert page.locator("html").get_attribute("data-theme") == "dark"
        assert _luminance(page.evaluate("getComputedStyle(document.body).backgroundColor")) < 0.25
        page.select_option("#lang-select", "zh_CN")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        assert page.url.endswith("/console/usage")
        page.goto("/console/")
        assert "仪表盘" in page.locator("nav").inner_text()  # the language sticks too
    finally:
        page.context.close()


def test_models_search_filters_and_sort(browser: Browser, pages_gw: InprocConsole) -> None:
    page = _signed_in(browser, pages_gw, "en-US", "light")
    try:
        page.goto("/console/models")
        rows = page.locator("#models-table tbody tr")
        total = rows.count()
        page.fill("#mf-search", "deepseek")
        visible = page.locator("#models-table tbody tr:not([hidden])")
        assert 0 < visible.count() < total
        assert all("deepseek" in t.lower() for t in visible.all_inner_texts())
        page.fill("#mf-search", "")
        page.select_option("#mf-family", "qwen")
        fams = {r.get_attribute("data-family") for r in visible.all()}
        assert fams == {"qwen"}
        page.select_option("#mf-family", "")
        page.select_option("#mf-context", "1048576")
        assert all(int(r.get_attribute("data-context") or 0) >= 1048576 for r in visible.all())
        page.select_option("#mf-context", "0")
        page.fill("#mf-price", "0.5")
        assert all(int(r.get_attribute("data-input") or 0) <= 500_000 for r in visible.all())
        page.fill("#mf-price", "")
        page.locator("th[data-sort=input] .sort-btn").click()
        prices = [int(r.get_attribute("data-input") or 0) for r in rows.all()]
        assert prices == sorted(prices)
        page.locator("th[data-sort=input] .sort-btn").click()
        prices = [int(r.get_attribute("data-input") or 0) for r in rows.all()]
        assert prices == sorted(prices, reverse=True)
        assert page.locator("th[data-sort=input]").get_attribute("aria-sort") == "descending"
        assert not page.js_errors  # type: ignore[attr-defined]
    finally:
        page.context.close()
