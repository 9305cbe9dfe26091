"""Issue 15: the console's Alerts page. In Chromium: set a low-balance threshold and a webhook
(its secret shown once), spend past the threshold in the playground, see the alert on the
dashboard and the Alerts page, and the webhook arrive signed. Over HTTP: CSRF, bad input,
Chinese."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import add_user, http_session, sign_in
from tests.fakes.hooks import WebhookReceiver
from tests.harness import Gateway

PW = "pw-alerts-123456"


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


def test_set_a_threshold_spend_past_it_see_the_alert(
        console_gw: Gateway, new_page: Callable[..., Page], hook: WebhookReceiver) -> None:
    gw = console_gw
    add_user(gw, "ann", PW, credit="1")
    page = new_page(gw)
    sign_in(page, "ann", PW)
    expect(page.locator("#recent-alerts")).to_have_count(0)
    page.click("a.nav-link[href='/console/alerts']")
    expect(page.locator("#no-alerts")).to_be_visible()
    page.fill("#low-balance", "1")  # all the credit: the first paid answer crosses it
    page.fill("#webhook-url", hook.url)
    page.click("#save-alerts")
    expect(page.locator("#alerts-saved")).to_be_visible()
    secret = page.locator("#webhook-secret").inner_text().strip()
    assert secret.startswith("whsec_")
    hook.secret = secret
    expect(page.locator("#low-balance")).to_have_value("1")
    expect(page.locator("#percents")).to_have_value("80, 100")
    page.reload()
    assert secret not in page.content()  # shown once
    expect(page.locator("#secret-state")).to_have_text("A signing secret is set.")

    page.click("a.nav-link[href='/console/playground']")
    page.select_option("#pg-model", "demo")
    page.fill("#pg-max-tokens", "30")
    page.fill("#pg-prompt", "Say something short.")
    page.click("#pg-send")
    expect(page.locator(".msg-assistant").last).to_have_class(re.compile(r"\bbilled\b"),
                                                              timeout=30_000)
    [got] = hook.wait(1)
    assert got.valid and got.event["type"] == "balance.low"
    deadline = time.monotonic() + 10
    page.goto("/console/")
    while page.locator("#recent-alerts").count() == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        page.reload()
    row = page.locator("#dashboard-alerts tr[data-alert-kind='low_balance']")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("is below $1.0000")
    page.click("#recent-alerts a[href='/console/alerts']")
    row = page.locator("#alerts-table tr[data-alert-kind='low_balance']")
    expect(row).to_contain_text("webhook: sent")
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_alerts_page_csrf_bad_input_and_chinese(console_gw: Gateway, hook: WebhookReceiver,
                                                ) -> None:
    gw = console_gw
    add_user(gw, "bo", PW, credit="1")
    client, csrf = http_session(gw, "bo", PW)
    form = {"low_balance": "2", "percents": "50, 90", "email": "bo@example.com",
            "email_enabled": "on", "webhook_url": ""}
    assert client.post("/console/alerts", data=form).status_code == 403  # no CSRF token
    r = client.post("/console/alerts", data={**form, "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/console/alerts?saved=1"
    page = client.get("/console/alerts").text
    assert 'value="2"' in page and 'value="50, 90"' in page and "bo@example.com" in page
    bad: list[dict[str, Any]] = [
        {"low_balance": "-3"}, {"low_balance": "abc"}, {"low_balance": "1" * 40},
        {"percents": "80, x"}, {"percents": "0"}, {"percents": "1,2,3,4,5,6"},
        {"percents": "9" * 30}, {"email": "bo@example.com\r\nBcc: x@y.z"},
        {"webhook_url": "http://169.254.169.254/"}, {"webhook_url": "file:///etc/passwd"},
        {"webhook_url": "http://ex\u00e4mple.com/"}, {"low_balance": "1\x00"},
    ]
    for change in bad:
        r = client.post("/console/alerts", data={**form, **change, "csrf_token": csrf})
        assert r.status_code == 400, (change, r.status_code)
    assert 'value="2"' in client.get("/console/alerts").text  # nothing changed
    zh = client.get("/console/alerts", headers={"accept-language": "zh-CN"}).text
    assert "余额不足阈值" in zh and "提醒" in zh
    assert client.post("/console/alerts/rotate").status_code == 403
    r = client.post("/console/alerts/rotate", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert re.search(r"whsec_[\w-]+", client.get("/console/alerts").text)
    assert not re.search(r"whsec_[\w-]+", client.get("/console/alerts").text)  # once
