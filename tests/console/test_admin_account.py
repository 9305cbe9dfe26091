"""Issue 14: keys and accounts edited in the console — every key field, an account's role,
disabling it (its keys answer 401 and its sessions end) and resetting its password."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import add_user, admin_password, http_session, sign_in
from tests.harness import Gateway

MSG = [{"role": "user", "content": "hi"}]


def test_admin_edits_a_key_and_disables_an_account(console_gw: Gateway,
                                                   new_page: Callable[..., Page]) -> None:
    gw = console_gw
    aid = add_user(gw, "carol", "carol-password-1", credit="5")
    secret = gw.key(account="carol")
    [key] = gw.sql("SELECT id FROM api_keys WHERE account_id = :a", a=aid)
    client = gw.client(secret, max_retries=0)
    assert client.chat.completions.create(model="demo", messages=MSG, max_tokens=5).choices
    carol, _ = http_session(gw, "carol", "carol-password-1")
    assert carol.get("/console/keys").status_code == 200
    page = new_page(gw)
    sign_in(page, "admin", admin_password(gw))
    page.goto("/console/admin/accounts")
    page.click("a[data-manage=carol]")
    form = page.locator(f"details[data-key='{key['id']}'] form")
    form.locator("input[name=name]").fill("carol-ci")
    form.locator("input[name=families][value=kimi]").check()
    form.locator("input[name=daily_budget]").fill("0.50")
    form.locator("input[name=monthly_budget]").fill("7")
    form.locator("input[name=rpm]").fill("30")
    form.locator("input[name=tpm]").fill("9000")
    form.locator("input[name=expires]").fill("2099-12-31")
    form.locator("button[type=submit]").click()
    expect(page.locator("#done-note")).to_be_visible()
    [row] = gw.sql("SELECT * FROM api_keys WHERE id = :k", k=key["id"])
    assert row["name"] == "carol-ci" and row["families"] == '["kimi"]'
    assert row["daily_budget_micro"] == 500_000 and row["monthly_budget_micro"] == 7_000_000
    assert row["rpm"] == 30 and row["tpm"] == 9000 and str(row["expires_at"])[:4] == "2100"
    # The running gateway applies it at once: the key is now limited to the kimi family.
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="demo", messages=MSG, max_tokens=5)
    # A bad value is refused with the API's message and changes nothing.
    form = page.locator(f"details[data-key='{key['id']}'] form")
    form.locator("input[name=daily_budget]").fill("1e3")
    form.locator("button[type=submit]").click()
    expect(page.locator("#admin-error")).to_be_visible()
    [same] = gw.sql("SELECT daily_budget_micro FROM api_keys WHERE id = :k", k=key["id"])
    assert same["daily_budget_micro"] == 500_000
    # Clearing the boxes removes the limits.
    form = page.locator(f"details[data-key='{key['id']}'] form")
    for name in ("daily_budget", "monthly_budget", "rpm", "tpm", "expires"):
        form.locator(f"input[name={name}]").fill("")
    form.locator("input[name=families][value=kimi]").uncheck()
    form.locator("button[type=submit]").click()
    expect(page.locator("#done-note")).to_be_visible()
    [row] = gw.sql("SELECT * FROM api_keys WHERE id = :k", k=key["id"])
    assert row["families"] is None and row["daily_budget_micro"] is None and row["rpm"] is None
    assert row["expires_at"] is None
    # Disable: the key answers 401 and carol's console session ends; enable restores both.
    page.click("#disable-account")
    expect(page.locator("#disabled-badge")).to_be_visible()
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="demo", messages=MSG, max_tokens=5)
    assert "disabled" in str(refused.value)
    assert carol.get("/console/keys", follow_redirects=False).status_code == 303
    r = httpx.get(gw.base_url + "/account", headers={"authorization": f"Bearer {secret}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "account_disabled"
    page.click("#enable-account")
    expect(page.locator("#disabled-badge")).to_have_count(0)
    assert client.chat.completions.create(model="demo", messages=MSG, max_tokens=5).choices
    # Role and password.
    page.select_option("#role-form select[name=role]", "admin")
    page.click("#role-form button[type=submit]")
    expect(page.locator("#done-note")).to_be_visible()
    page.click("#reset-password")
    new = page.locator("#new-password").inner_text()
    assert len(new) >= 12
    http_session(gw, "carol", new)  # signs in with the new password
    [acct] = gw.sql("SELECT role FROM accounts WHERE id = :a", a=aid)
    assert acct["role"] == "admin"
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_admin_api_disables_an_account(console_gw: Gateway) -> None:
    gw = console_gw
    aid = add_user(gw, "dan", "dan-password-1", credit="1")
    secret = gw.key(account="dan")
    client, csrf = http_session(gw, "admin", admin_password(gw))
    r = client.post(f"/console/admin/accounts/{aid}/disable",
                    data={"csrf_token": csrf, "disabled": "1"})
    assert r.status_code == 303
    bad = httpx.get(gw.base_url + "/account", headers={"authorization": f"Bearer {secret}"})
    assert bad.status_code == 401
    [me] = gw.sql("SELECT id FROM accounts WHERE name = 'admin'")
    own = client.post(f"/console/admin/accounts/{me['id']}/disable",
                      data={"csrf_token": csrf, "disabled": "1"})
    assert own.status_code == 400 and "your own account" in own.text

