"""Issue 7: the console in a real browser (Debian's Chromium driven by Playwright).

Sign in with the first-start password, create a key, use it through the openai SDK, find the
request and its cost in the usage log, stream an answer in the playground, revoke the key and
see the SDK refused. Screenshots of the dashboard, playground and models pages go to a
temporary folder, or to docs/ with ``python -m tests.console.screenshots``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from playwright.sync_api import Page, expect

from smartoken.money import format_usd
from tests.console.conftest import DOCS, PHONE, SCREENSHOTS_ENV, add_user, admin_password, sign_in
from tests.harness import Gateway


def _usd(micro: int) -> str:
    whole, frac = format_usd(micro).split(".")
    return f"${whole}.{frac.rstrip('0').ljust(6, '0')}"


def test_first_run_key_sdk_usage_playground_revoke(console_gw: Gateway,
                                                   new_page: Callable[..., Page],
                                                   shots: Path) -> None:
    gw = console_gw
    page = new_page(gw)
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    sign_in(page, "admin", admin_password(gw))
    expect(page.locator("#wallet-balance")).to_have_text("$100.0000")  # first-start credit

    # Create a key scoped to Kimi with budgets and an expiry; the secret is shown once.
    page.click("a.nav-link[href='/console/keys']")
    page.fill("#create-key input[name=name]", "e2e-key")
    page.check("#create-key input[name=families][value=kimi]")
    page.fill("#create-key input[name=daily_budget]", "2")
    page.fill("#create-key input[name=monthly_budget]", "20")
    page.fill("#create-key input[name=expires]", "2030-12-31")
    page.click("#create-key button[type=submit]")
    secret = page.locator("#new-secret").inner_text().strip()
    assert re.fullmatch(r"sk-st-[A-Za-z0-9_-]{40}", secret)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy-secret")
    expect(page.locator("#copy-secret")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    row = page.locator("#keys-table tr[data-key-name='e2e-key']")
    expect(row.locator("[data-family=kimi]")).to_have_text("Kimi")  # the family's name
    expect(row).to_contain_text("$2.00")
    expect(row).to_contain_text("2030-12-31")
    page.reload()
    assert secret not in page.content()  # shown once: a reload does not show it again
    [key_row] = gw.sql("SELECT * FROM api_keys WHERE name = 'e2e-key'")
    assert key_row["daily_budget_micro"] == 2_000_000
    assert key_row["monthly_budget_micro"] == 20_000_000
    assert secret not in str(key_row)  # only the hash is stored

    # Use it through the openai SDK; its scope holds (kimi only).
    client = gw.client(secret)
    raw = client.chat.completions.with_raw_response.create(
        model="kimi-k2", max_tokens=40, messages=[{"role": "user", "content": "Hello Kimi"}])
    rid = raw.headers["x-request-id"]
    assert raw.parse().choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="deepseek-chat",
                                       messages=[{"role": "user", "content": "x"}])
    [rec] = gw.wait_usage(1, id=rid)

    # The request shows in the usage log with its cost, and in the key's spend.
    page.click("a.nav-link[href='/console/usage']")
    usage_row = page.locator(f"#usage-table tr[data-request-id='{rid}']")
    expect(usage_row).to_contain_text("kimi-k2")
    expect(usage_row).to_contain_text("e2e-key")
    expect(usage_row.locator(".cost")).to_have_text(_usd(rec["cost_micro"]))
    assert rec["cost_micro"] > 0
    page.select_option("#usage-filters select[name=model]", "deepseek-chat")
    page.click("#usage-filters button[type=submit]")
    expect(page.locator("#usage-table")).to_have_count(0)
    page.select_option("#usage-filters select[name=model]", "kimi-k2")
    page.click("#usage-filters button[type=submit]")
    expect(page.locator("#total-requests")).to_have_text("1")
    with page.expect_download() as dl:
        page.click("#csv-export")
    csv_text = open(dl.value.path(), encoding="utf-8").read()  # noqa: SIM115
    assert rid in csv_text and format_usd(rec["cost_micro"]) in csv_text
    page.goto("/console/keys")
    expect(page.locator("#keys-table tr[data-key-name='e2e-key'] .key-spent .usd")
           ).to_have_attribute("title", _usd(rec["cost_micro"]))

    # Playground: the demo provider streams token by token; the answer shows tokens, cost,
    # latency and time to first token, billed and recorded like any other request.
    page.click("a.nav-link[href='/console/playground']")
    page.select_option("#pg-model", "demo")
    page.fill("#pg-system", "You are terse.")
    page.fill("#pg-max-tokens", "60")
    page.fill("#pg-prompt", "Explain the best use case for this model.")
    page.evaluate("""() => {
        window.__lengths = [];
        new MutationObserver(() => {
            const t = document.querySelector('.msg-assistant .msg-text');
            if (t) window.__lengths.push(t.textContent.length);
        }).observe(document.getElementById('pg-messages'),
                   {subtree: true, childList: true, characterData: true});
    }""")
    page.click("#pg-send")
    answer = page.locator(".msg-assistant").last
    expect(answer).to_have_class(re.compile(r"\bbilled\b"), timeout=30_000)
    lengths: list[int] = page.evaluate("window.__lengths")
    growing = sorted(set(lengths))
    assert len(growing) >= 10, f"the answer did not stream token by token: {lengths}"
    assert int(answer.get_attribute("data-chunks") or 0) >= 10
    text = answer.locator(".msg-text").inner_text()
    assert "demo" in text.lower()
    pg_rid = answer.get_attribute("data-request-id")
    [pg_rec] = gw.wait_usage(1, id=pg_rid)
    assert pg_rec["status"] == "ok" and pg_rec["requested_model"] == "demo"
    assert pg_rec["completion_tokens"] > 0 and pg_rec["cost_micro"] > 0
    expect(answer.locator("[data-stat=tokens] b")).to_have_text(
        f"{pg_rec['prompt_tokens']} in · {pg_rec['completion_tokens']} out")
    assert answer.get_attribute("data-cost-micro") == str(pg_rec["cost_micro"])
    expect(answer.locator("[data-stat=latency] b")).to_have_text(f"{pg_rec['latency_ms']} ms")
    expect(answer.locator("[data-stat=ttft] b")).to_have_text(f"{pg_rec['ttft_ms']} ms")
    [pg_key] = gw.sql("SELECT * FROM api_keys WHERE id = :k", k=pg_rec["key_id"])
    assert pg_key["name"] == "Console playground" and pg_key["account_id"] == rec["account_id"]
    [debit] = gw.sql("SELECT * FROM wallet_transactions WHERE request_id = :r", r=pg_rid)
    assert debit["amount_micro"] == -pg_rec["cost_micro"]
    assert not page.js_errors  # type: ignore[attr-defined]

    # "View code": the same request as cURL, Python and TypeScript with this gateway's URL.
    page.fill("#pg-prompt", "Write a haiku")
    page.click("#view-code")
    modal = page.locator("#code-modal")
    expect(modal).to_be_visible()
    curl = modal.locator("pre[data-pane=curl]").inner_text()
    assert f"{gw.base_url}/v1/chat/completions" in curl and '"model": "demo"' in curl
    assert "You are terse." in curl and '"max_tokens": 60' in curl and "Write a haiku" in curl
    modal.locator(".tab[data-tab=python]").click()
    python = modal.locator("pre[data-pane=python]")
    expect(python).to_be_visible()
    assert f'base_url="{gw.base_url}/v1"' in python.inner_text()
    modal.locator(".tab[data-tab=typescript]").click()
    assert f'baseURL: "{gw.base_url}/v1"' in modal.locator("pre[data-pane=typescript]") \
        .inner_text()
    modal.locator(".tab[data-tab=anthropic]").click()
    anthropic_sample = modal.locator("pre[data-pane=anthropic]").inner_text()
    assert f'base_url="{gw.base_url}"' in anthropic_sample and "Write a haiku" in anthropic_sample
    modal.locator(".tab[data-tab=claude_code]").click()
    assert f'ANTHROPIC_BASE_URL="{gw.base_url}"' in modal.locator(
        "pre[data-pane=claude_code]").inner_text()
    page.screenshot(path=str(shots / "console-playground-code.png"))
    page.click("#code-close")
    page.screenshot(path=str(shots / "console-playground.png"))

    # Revoke: the very next SDK call is refused.
    page.goto("/console/keys")
    page.once("dialog", lambda d: d.accept())
    page.locator("#keys-table tr[data-key-name='e2e-key'] button:has-text('Revoke')").click()
    expect(page.locator("#revoked-note")).to_be_visible()
    expect(page.locator("#keys-table tr[data-key-name='e2e-key'] .badge")).to_have_text("revoked")
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="kimi-k2",
                                       messages=[{"role": "user", "content": "again"}])
    assert refused.value.body["code"] == "key_revoked"  # type: ignore[index]

    # Screenshots for the README, after some traffic on a few models.
    busy = gw.client(gw.key(account="admin", name="backend-prod", daily_budget_micro=4_000,
                            monthly_budget_micro=50_000))
    for i, model in enumerate(["deepseek-chat", "qwen-plus", "glm-4.6", "kimi-k2",
                               "deepseek-chat", "minimax-m2", "deepseek-chat"]):
        busy.chat.completions.create(model=model, max_tokens=20 + 15 * i, messages=[
            {"role": "user", "content": "Summarise the seed page. " * (i + 1)}])
    gw.wait_usage(10)
    page.goto("/console/")
    expect(page.locator("#spent-today")).not_to_have_text("$0.0000")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "console-dashboard.png"), full_page=True)
    page.goto("/console/models")
    page.screenshot(path=str(shots / "console-models.png"))
    page.goto("/console/models/kimi-k2")
    expect(page.locator("#model-title")).to_have_text("kimi-k2")
    assert gw.base_url + "/v1" in page.locator("#model-samples pre[data-pane=curl]").inner_text()
    page.locator("#model-samples .tab[data-tab=claude_code]").click()
    assert 'ANTHROPIC_MODEL="kimi-k2"' in page.locator(
        "#model-samples pre[data-pane=claude_code]").inner_text()
    page.screenshot(path=str(shots / "console-model-page.png"), full_page=True)
    assert not page.js_errors  # type: ignore[attr-defined]
    # Works offline: every asset came from the gateway itself (the charting library too).
    assert f"{gw.base_url}/console/static/chart.umd.min.js" in requested
    assert all(u.startswith(gw.base_url + "/") for u in requested), \
        [u for u in requested if not u.startswith(gw.base_url + "/")]


def test_wrong_password_is_refused(console_gw: Gateway, new_page: Callable[..., Page]) -> None:
    page = new_page(console_gw)
    page.goto("/console/login")
    for name, password in (("admin", "not-the-password"), ("nobody", "whatever1")):
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", password)
        with page.expect_response("**/console/login") as resp:
            page.click("button[type=submit]")
        assert resp.value.status == 401
        expect(page.locator("#login-error")).to_have_text("Wrong account name or password.")
        assert not [c for c in page.context.cookies() if c["name"] == "st_session"]
    page.goto("/console/keys")
    assert "/console/login" in page.url  # still signed out


def test_non_admin_cannot_open_admin_pages(console_gw: Gateway,
                                           new_page: Callable[..., Page]) -> None:
    gw = console_gw
    add_user(gw, "carol", "carol-password", credit="3")
    page = new_page(gw)
    sign_in(page, "carol", "carol-password")
    expect(page.locator("#wallet-balance")).to_have_text("$3.0000")
    expect(page.locator("a[href='/console/admin/routes']")).to_have_count(0)
    for path in ("/console/admin/routes", "/console/admin/accounts"):
        resp = page.goto(path)
        assert resp is not None and resp.status == 403
        expect(page.locator("#error-message")).to_have_attribute("data-code", "admin_only")
    resp = page.request.get("/console/api/health")
    assert resp.status == 403
    # A crafted form post with a valid CSRF token is still refused for the role.
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content")
    [carol] = gw.sql("SELECT id FROM accounts WHERE name = 'carol'")
    resp = page.request.post("/console/admin/credit", form={
        "csrf_token": csrf or "", "account_id": str(carol["id"]), "amount": "1000"})
    assert resp.status == 403
    assert gw.sql("SELECT balance_micro FROM wallets WHERE account_id = :a",
                  a=carol["id"])[0]["balance_micro"] == 3_000_000


def test_admin_credit_reaches_the_running_wallet(console_gw: Gateway,
                                                 new_page: Callable[..., Page]) -> None:
    gw = console_gw
    secret = gw.key(account="dave")  # dave's wallet is empty
    client = gw.client(secret)
    msg = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.APIStatusError) as broke:
        client.chat.completions.create(model="demo", messages=msg, max_tokens=20)
    assert broke.value.status_code == 402
    page = new_page(gw)
    sign_in(page, "admin", admin_password(gw))
    page.goto("/console/admin/accounts")
    [dave] = gw.sql("SELECT id FROM accounts WHERE name = 'dave'")
    page.select_option("#credit-form select[name=account_id]", str(dave["id"]))
    page.fill("#credit-form input[name=amount]", "5")
    page.fill("#credit-form input[name=reason]", "e2e top-up")
    page.click("#credit-form button[type=submit]")
    expect(page.locator("#credit-note")).to_be_visible()
    expect(page.locator("#accounts-table tr[data-account=dave] .balance")).to_have_text("$5.0000")
    # At once, without waiting for the change poller.
    assert client.chat.completions.create(model="demo", messages=msg, max_tokens=20).choices
    [credit] = gw.sql("SELECT * FROM wallet_transactions WHERE reason = 'e2e top-up'")
    assert credit["amount_micro"] == 5_000_000 and credit["actor"] == "console:admin"
    # Routes page: live health of the demo route that just answered.
    page.goto("/console/admin/routes")
    demo_row = page.locator("#routes-table tr[data-route='demo:demo/demo']")
    expect(demo_row.locator("[data-h=state]")).to_have_attribute("data-state", "closed")
    expect(demo_row.locator("[data-h=counts]")).to_contain_text("1 ok")
    client.chat.completions.create(model="demo", messages=msg, max_tokens=20)
    expect(demo_row.locator("[data-h=counts]")).to_contain_text("2 ok", timeout=10_000)


PHONE_PATHS = ("/console/", "/console/keys", "/console/usage", "/console/wallet",
               "/console/playground", "/console/models", "/console/models/kimi-k2",
               "/console/admin/routes", "/console/admin/accounts")


def test_phone_width_has_no_horizontal_overflow(console_gw: Gateway,
                                                new_page: Callable[..., Page],
                                                shots: Path) -> None:
    # Issue 12 item 15: a test run left the tracked screenshots in docs/ rewritten.
    assert (shots.resolve() == DOCS.resolve()) == (os.environ.get(SCREENSHOTS_ENV) == "1")
    page = new_page(console_gw, PHONE)
    sign_in(page, "admin", admin_password(console_gw))
    for path in PHONE_PATHS:
        page.goto(path)
        width: Any = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{path} is {width[0]}px wide on a {width[1]}px screen"
        sidebar = page.locator("#sidebar")
        expect(sidebar).to_be_hidden()
        page.click("#menu-toggle")
        expect(sidebar).to_be_visible()
        expect(sidebar.locator("a[href='/console/usage']")).to_be_visible()
        page.click("#menu-toggle")
        expect(sidebar).to_be_hidden()
        if path == "/console/":
            page.screenshot(path=str(shots / "console-phone.png"))
    assert not page.js_errors  # type: ignore[attr-defined]


def test_playground_stop_bills_what_was_delivered(console_gw: Gateway,
                                                  new_page: Callable[..., Page]) -> None:
    gw = console_gw
    page = new_page(gw)
    sign_in(page, "admin", admin_password(gw))
    page.goto("/console/playground?model=kimi-k2")
    expect(page.locator("#pg-model")).to_have_value("kimi-k2")
    page.fill("#pg-max-tokens", "2000")
    page.fill("#pg-prompt", "Write a very long story.")
    page.click("#pg-send")
    answer = page.locator(".msg-assistant").last
    page.wait_for_function(
        "() => Number(document.querySelector('.msg-assistant')?.dataset.chunks || 0) >= 5")
    page.click("#pg-stop")
    expect(answer).to_have_class(re.compile(r"\bdone\b"))
    expect(answer.locator(".msg-text")).to_contain_text("[stopped]")
    rid = answer.get_attribute("data-request-id")
    [rec] = gw.wait_usage(1, id=rid)
    assert rec["status"] == "client_closed" and rec["usage_estimated"]
    assert 0 < rec["completion_tokens"] < 2000 and rec["cost_micro"] > 0
    [debit] = gw.sql("SELECT * FROM wallet_transactions WHERE request_id = :r", r=rid)
    assert debit["amount_micro"] == -rec["cost_micro"]
    # The stopped answer is not in the conversation sent next; the stop released the rest.
    expect(page.locator("#pg-send")).to_be_enabled()
