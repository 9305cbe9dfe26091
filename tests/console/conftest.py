"""Console fixtures: a live gateway on the demo provider, Debian's Chromium driven by
Playwright, and helpers to sign in (in the browser or with httpx)."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from smartoken.auth.passwords import hash_password
from smartoken.store import repo
from tests.console.inproc_console import InprocConsole
from tests.harness import Gateway

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs"
SCREENSHOTS_ENV = "SMARTOKEN_SCREENSHOTS"  # set by ``python -m tests.console.screenshots``
LAPTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}


def admin_password(gw: Gateway) -> str:
    """What ``smartoken serve`` printed on its first start: the first-run path."""
    match = re.search(r"console password: (\S+)\)", gw.log())
    assert match, f"no admin password in the first-start output:\n{gw.log()}"
    return match.group(1)


def add_user(gw: Gateway, name: str, password: str, role: str = "user",
             credit: str = "0") -> int:
    aid = gw.account(name, credit, role)
    gw.db(lambda e: repo.set_password(e, aid, hash_password(password)))
    return aid


class ConsoleGateway(Gateway):
    """A gateway whose database helpers run in a worker thread: Playwright's sync API keeps an
    event loop running in the test's thread, where ``asyncio.run`` is not allowed."""

    def db(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(super().db, fn).result()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the browser tests put their screenshots: the tracked ones in docs/ only when asked
    for (``python -m tests.console.screenshots``), else a temporary folder, so that a test run
    leaves the checkout unchanged."""
    if os.environ.get(SCREENSHOTS_ENV) == "1":
        return DOCS
    out = tmp_path / "screenshots"
    out.mkdir(exist_ok=True)
    return out


@pytest.fixture
def console_gw(tmp_path: Path) -> Iterator[Gateway]:
    # The demo provider paces its tokens, so streaming is visible in the browser.
    # In-process (tests/console/inproc_console.py): ~0.1 s to start instead of ~1.5 s.
    gw = InprocConsole(tmp_path, env={"SMARTOKEN_DEMO_DELAY_MS": "15"}).start()
    yield gw
    gw.stop()


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is open, which would break ``asyncio.run`` in the other test modules.
@pytest.fixture(scope="module")
def playwright_() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright_: Playwright) -> Iterator[Browser]:
    b = playwright_.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    yield b
    b.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    contexts: list[Any] = []

    def make(gw: Gateway, viewport: dict[str, int] | None = None) -> Page:
        ctx = browser.new_context(base_url=gw.base_url, viewport=viewport or LAPTOP,
                                  device_scale_factor=1)
        ctx.set_default_timeout(20_000)
        contexts.append(ctx)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def sign_in(page: Page, name: str, password: str) -> None:
    page.goto("/console/")
    assert "/console/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")


def http_session(gw: Gateway, name: str, password: str) -> tuple[httpx.Client, str]:
    """An httpx client signed in to the console, and the session's CSRF token."""
    client = httpx.Client(base_url=gw.base_url, timeout=30)
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    r = client.post("/console/login", data={"csrf_token": token.group(1), "name": name,
                                            "password": password})
    assert r.status_code == 303, r.text
    return client, csrf_of(client.get("/console/keys").text)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match and match.group(1)
    return match.group(1)
