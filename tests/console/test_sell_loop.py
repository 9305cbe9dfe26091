"""Issue 15's whole loop in Chromium, against local stand-ins over real HTTP: a visitor signs up,
verifies their email from the mail a local SMTP server caught, gets the trial credit, tops up
through the fake Stripe Checkout (credited by the signed webhook only), sees the receipt, sets a
low-balance alert, spends through the playground, and receives the alert by mail. The ledger
invariant (balance = sum of transactions) holds at the end, and the top-up was credited once."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.inproc_console import InprocConsole
from tests.fakes.stripe_api import FakeStripe
from tests.mailbox import Mailbox

EMAIL = "buyer@example.com"
PW = "buyer-password-1"


def test_sign_up_verify_trial_top_up_receipt_spend_alert(
        tmp_path: Path, new_page: Callable[..., Page], stripe_fake: FakeStripe) -> None:
    with Mailbox() as box:
        gw = InprocConsole(tmp_path, {"signup": {"policy": "open", "trial_credit_usd": "1"}},
                           env={"SMARTOKEN_SMTP_URL": box.url, **stripe_fake.env()}).start()
        try:
            stripe_fake.webhook_url = gw.base_url + "/webhooks/stripe"
            page = new_page(gw)

            # Sign up, verify from the mail, sign in: the $1 trial credit is there.
            page.goto("/console/login")
            page.click("#signup-link")
            page.fill("input[name=email]", EMAIL)
            page.fill("input[name=password]", PW)
            page.click("button[type=submit]")
            page.wait_for_url("**/console/check-mail")
            verify = box.wait_for(EMAIL)
            [link] = [x for x in verify.links() if "/console/verify?token=" in x]
            page.goto(link)
            page.click("#to-login")
            page.fill("input[name=name]", EMAIL)
            page.fill("input[name=password]", PW)
            page.click("button[type=submit]")
            page.wait_for_url("**/console/")
            [acct] = gw.sql("SELECT id FROM accounts WHERE email = :e", e=EMAIL)
            aid = acct["id"]
            expect(page.locator("#wallet-balance")).to_have_text("$1.0000")

            # Top up $10 through the fake Checkout: the redirect back credits nothing, the
            # signed webhook the Pay button fires credits once.
            page.goto("/console/wallet/topup")
            page.fill("#topup-amount", "10")
            page.click("#topup-submit")
            page.wait_for_url(f"{stripe_fake.base}/pay/**")
            page.click("#pay")
            page.wait_for_url("**/console/wallet/topup/done**")
            expect(page.locator("[data-status]")).to_have_attribute(
                "data-status", re.compile("pending|paid|credited"))
            page.goto("/console/wallet")
            expect(page.locator("#wallet-balance")).to_have_text("$11.0000")
            page.click("a[href^='/console/wallet/receipts/']")
            assert "$10.00" in page.content() and EMAIL in page.content()

            # A low-balance alert at $11.00, then spend through the playground.
            page.goto("/console/alerts")
            page.fill("#low-balance", "11")
            if not page.is_checked("#email-enabled"):
                page.check("#email-enabled")
            page.click("#save-alerts")
            expect(page.locator("#alerts-saved")).to_be_visible()
            page.goto("/console/playground")
            page.select_option("#pg-model", "demo")
            page.fill("#pg-max-tokens", "40")
            page.fill("#pg-prompt", "Say something short.")
            page.click("#pg-send")
            answer = page.locator(".msg-assistant").last
            expect(answer).to_have_class(re.compile(r"\bbilled\b"), timeout=30_000)
            cost = int(answer.get_attribute("data-cost-micro") or 0)
            assert cost > 0

            alert = box.wait_for(EMAIL, count=2, timeout=20)
            assert "below $11" in alert.subject, alert.subject
            page.goto("/console/alerts")
            expect(page.locator("#no-alerts")).to_have_count(0)
            assert not page.js_errors  # type: ignore[attr-defined]

            # Money: balance = sum of transactions = trial + top-up - the one answer's cost;
            # one top-up credit however many times Stripe delivered.
            [w] = gw.sql("SELECT balance_micro FROM wallets WHERE account_id = :a", a=aid)
            txs = gw.sql("SELECT kind, origin, amount_micro FROM wallet_transactions "
                         "WHERE account_id = :a", a=aid)
            assert w["balance_micro"] == sum(t["amount_micro"] for t in txs)
            assert w["balance_micro"] == 11_000_000 - cost, txs
            assert sum(1 for t in txs if t["amount_micro"] == 10_000_000) == 1, txs
            assert len(box.to(EMAIL)) == 2  # the verification and one alert, no repeat
        finally:
            gw.stop()
