"""Issue 15 in the console: an admin generates redemption codes (shown once), a user redeems one
on the wallet page and reads the month's printable statement, in English and in Chinese."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from smartoken.i18n.locales import COOKIE
from tests.console.conftest import add_user, admin_password, http_session, sign_in
from tests.harness import Gateway
from tests.moneykit import assert_invariants


def test_admin_makes_codes_user_redeems_and_reads_the_statement(
        console_gw: Gateway, new_page: Callable[..., Page]) -> None:
    gw = console_gw
    aid = add_user(gw, "dora", "dora-password-1")
    admin = new_page(gw)
    sign_in(admin, "admin", admin_password(gw))
    admin.goto("/console/admin/codes")
    admin.fill("#codes-form input[name=count]", "2")
    admin.fill("#codes-form input[name=amount]", "3.25")
    admin.fill("#codes-form input[name=batch]", "promo")
    admin.click("#codes-submit")
    expect(admin.locator("#new-codes")).to_be_visible()
    codes = admin.locator("#made-codes").inner_text().split()
    assert len(codes) == 2 and all(c.startswith("ST-") for c in codes)
    admin.goto("/console/admin/codes")  # shown once: never again
    assert codes[0] not in admin.content() and admin.locator("#codes-table tr").count() == 3
    assert admin.js_errors == []  # type: ignore[attr-defined]

    user = new_page(gw)
    sign_in(user, "dora", "dora-password-1")
    user.goto("/console/wallet")
    user.fill("#redeem-code", "  " + codes[0].lower().replace("-", " ") + " ")
    user.click("#redeem-submit")
    expect(user.locator("#redeem-done")).to_be_visible()
    expect(user.locator("#wallet-balance")).to_contain_text("3.25")
    user.fill("#redeem-code", codes[0])  # a second time: the one constant refusal
    user.click("#redeem-submit")
    expect(user.locator("#redeem-error")).to_contain_text("cannot be redeemed")
    [w] = gw.sql("SELECT balance_micro FROM wallets WHERE account_id = :a", a=aid)
    assert w["balance_micro"] == 3_250_000
    user.click("#statements-link")
    month = datetime.now(UTC).strftime("%Y-%m")  # the gateway's zone: UTC by default
    user.click(f"#months-table a[href$='/{month}']")
    expect(user.locator("#closing-balance")).to_have_text("$3.250000")
    expect(user.locator("tr[data-line=credit_code]")).to_contain_text("$3.250000")
    expect(user.locator("#print-statement")).to_be_visible()
    # Printing hides the navigation; the Print button calls the browser's print.
    user.emulate_media(media="print")
    expect(user.locator("#sidebar")).to_be_hidden()
    user.emulate_media(media="screen")
    assert user.js_errors == []  # type: ignore[attr-defined]
    # In Chinese.
    user.context.add_cookies([{"name": COOKIE, "value": "zh_CN", "url": gw.base_url}])
    user.reload()
    expect(user.locator("h1")).to_contain_text("对账单")
    expect(user.locator("tr[data-line=credit_code]")).to_contain_text("兑换码")
    user.goto("/console/wallet")
    expect(user.locator("#redeem-card h2")).to_have_text("使用兑换码")
    user.fill("#redeem-code", "ST-nope")
    user.click("#redeem-submit")
    expect(user.locator("#redeem-error")).to_contain_text("无法兑换")
    # The admin reads the user's statement too.
    admin.goto(f"/console/admin/accounts/{aid}/statements/{month}")
    expect(admin.locator("#closing-balance")).to_have_text("$3.250000")
    assert_invariants(gw, aid)


def test_console_code_forms_need_csrf_and_the_admin_role(console_gw: Gateway) -> None:
    gw = console_gw
    add_user(gw, "eve", "eve-password-12")
    eve, csrf = http_session(gw, "eve", "eve-password-12")
    for path in ("/console/admin/codes", "/console/admin/accounts/1/statements/2026-11"):
        assert eve.get(path).status_code == 403
    r = eve.post("/console/admin/codes", data={"csrf_token": csrf, "count": "5",
                                               "amount": "100"})
    assert r.status_code == 403
    assert gw.sql("SELECT COUNT(*) AS n FROM redemption_codes")[0]["n"] == 0
    # Redeeming without the form's token is refused before the code is looked at.
    assert eve.post("/console/wallet/redeem", data={"code": "ST-x"}).status_code == 403
    assert gw.sql("SELECT COUNT(*) AS n FROM redemption_failures")[0]["n"] == 0
    for bad in ("x" * 5000, "ST-\xff", "ST-\x01\x02"):
        r = eve.post("/console/wallet/redeem", data={"csrf_token": csrf, "code": bad})
        assert r.status_code == 400, r.text[:200]
    for month in ("2026-13", "abc", "2026-11.csv.csv"):
        assert eve.get(f"/console/wallet/statements/{month}").status_code == 400
    r = eve.get("/console/wallet/statements/2026-11.csv")
    assert r.status_code == 200 and r.text.startswith("section,date,item")
