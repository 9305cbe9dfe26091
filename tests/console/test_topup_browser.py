"""Top-up in Chromium (issue 15): the wallet page's Top up, the fake Stripe Checkout (its Pay
button fires the signed webhook, then returns to the console), the credited balance and the
printable receipt, in English and Chinese."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.console.conftest import add_user, sign_in
from tests.console.inproc_console import InprocConsole
from tests.fakes.stripe_api import FakeStripe

PW = "browser-topup-pw-1"


def test_top_up_through_checkout_then_see_balance_and_receipt(
        tmp_path: Path, stripe_fake: FakeStripe, new_page: Callable[..., Page]) -> None:
    gw = InprocConsole(tmp_path, env=stripe_fake.env()).start()
    try:
        stripe_fake.webhook_url = gw.base_url + "/webhooks/stripe"
        aid = add_user(gw, "buyer", PW)
        page = new_page(gw)
        sign_in(page, "buyer", PW)
        page.goto("/console/wallet")
        page.click("#topup-link")
        page.wait_for_url("**/console/wallet/topup")
        page.fill("#topup-amount", "20")
        page.click("#topup-submit")
        page.wait_for_url(re.compile(re.escape(stripe_fake.base) + r"/pay/cs_test_\w+"))
        assert "Pay $20.00" in page.content()
        page.click("#pay")  # the fake delivers the signed webhook, then redirects back
        page.wait_for_url("**/console/wallet/topup/done?payment=pay_*")
        status = page.get_attribute("#topup-status", "data-status")
        if status == "pending":  # the page says so until the webhook lands; check again
            page.click("#topup-refresh")
            status = page.get_attribute("#topup-status", "data-status")
        assert status == "paid", page.content()
        page.goto("/console/wallet")
        assert "20.00" in page.inner_text("#wallet-balance")
        page.click("#receipts-table a")
        page.wait_for_url("**/console/wallet/receipts/*")
        assert page.inner_text("#receipt-amount") == "$20.00 USD"
        assert page.inner_text("#receipt-number").startswith("ST-")
        assert "buyer" in page.inner_text("#receipt")
        page.emulate_media(media="print")  # printable: the console's frame is hidden
        assert not page.is_visible(".sidebar") and page.is_visible("#receipt")
        page.emulate_media(media="screen")
        page.context.add_cookies([{"name": "st_lang", "value": "zh_CN", "url": gw.base_url}])
        page.reload()
        assert "充值收据" in page.content() or "收据" in page.content()
        assert not page.js_errors  # type: ignore[attr-defined]
        rows: Any = gw.sql("SELECT amount_micro FROM wallet_transactions WHERE account_id = :a",
                           a=aid)
        assert [r["amount_micro"] for r in rows] == [20_000_000]
    finally:
        gw.stop()
