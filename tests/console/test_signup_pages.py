"""The console's sign-up pages (issue 15): policy and invite codes set by an admin, sign-up,
"check your mail", the verification landing, forgot and reset password, in English and
Chinese; one Chromium run of the whole loop with the mail read from a local SMTP server."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.console.conftest import http_session
from tests.console.inproc_console import InprocConsole
from tests.mailbox import Mailbox

PW = "visitor-password-1"


@pytest.fixture
def box() -> Iterator[Mailbox]:
    with Mailbox() as b:
        yield b


@pytest.fixture
def gw(tmp_path: Path, box: Mailbox) -> Iterator[InprocConsole]:
    g = InprocConsole(tmp_path, {"signup": {"policy": "closed", "trial_credit_usd": "0"}},
                      env={"SMARTOKEN_SMTP_URL": box.url}).start()
    yield g
    g.stop()


def admin(gw: InprocConsole) -> tuple[httpx.Client, str]:
    password = re.search(r"console password: (\S+)\)", gw.log())
    assert password, gw.log()[:2000]
    return http_session(gw, "admin", password.group(1))


def login_token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m
    return m.group(1)


def ledger_ok(gw: InprocConsole, account_id: int) -> int:
    [w] = gw.sql("SELECT balance_micro FROM wallets WHERE account_id = :a", a=account_id)
    [t] = gw.sql("SELECT COALESCE(SUM(amount_micro), 0) AS s FROM wallet_transactions "
                 "WHERE account_id = :a", a=account_id)
    assert w["balance_micro"] == t["s"]
    return int(w["balance_micro"])


def test_invite_sign_up_verify_reset_through_the_console(gw: InprocConsole,
                                                        box: Mailbox) -> None:
    v = httpx.Client(base_url=gw.base_url, timeout=30)
    # Closed: no link on the sign-in page, the form says so, a post is refused.
    assert 'id="signup-link"' not in v.get("/console/login").text
    page = v.get("/console/signup")
    assert page.status_code == 403 and 'id="signup-closed"' in page.text
    r = v.post("/console/signup", data={"csrf_token": login_token(v.get("/console/login").text),
                                        "email": "x@example.com", "password": PW})
    assert r.status_code == 403 and not gw.sql("SELECT id FROM accounts WHERE email "
                                               "IS NOT NULL")
    # The admin opens sign-up by invitation with a $3.50 trial and generates two codes.
    a, csrf = admin(gw)
    assert a.post("/console/admin/signup", data={"policy": "invite", "trial_credit": "x",
                                                 "csrf_token": csrf}).status_code == 400
    r = a.post("/console/admin/signup", data={"policy": "invite", "trial_credit": "3.50",
                                             "csrf_token": csrf})
    assert r.status_code == 303
    assert 'value="3.5"' in a.get("/console/admin/signup").text
    r = a.post("/console/admin/invites", data={"count": "2", "expires_days": "7",
                                              "note": "beta", "csrf_token": csrf})
    assert r.status_code == 201, r.text[:500]
    codes = re.findall(r"inv-[A-Za-z0-9_\-]{20}", r.text)
    assert len(set(codes)) == 2
    listing = a.get("/console/admin/signup").text
    assert all(c not in listing for c in codes)  # shown once, never again
    # Without the admin's CSRF token nothing is generated; a user cannot reach the page.
    assert a.post("/console/admin/invites", data={"count": "1"}).status_code == 403
    # A visitor signs up with the first code.
    page = v.get("/console/login")
    assert 'id="signup-link"' in page.text
    form = v.get("/console/signup")
    assert 'name="invite_code"' in form.text
    r = v.post("/console/signup", data={"csrf_token": login_token(form.text),
                                        "email": "Vic@Example.com", "password": PW,
                                        "invite_code": "inv-wrong"})
    assert r.status_code == 400 and 'id="signup-error"' in r.text
    r = v.post("/console/signup", data={"csrf_token": login_token(form.text),
                                        "email": "Vic@Example.com", "password": PW,
                                        "invite_code": codes[0]})
    assert r.status_code == 303 and r.headers["location"] == "/console/check-mail"
    assert "Check your mail" in v.get("/console/check-mail").text
    link = next(x for x in box.wait_for("vic@example.com").links() if "verify" in x)
    # The used code is refused to the next visitor; the admin page shows who used it.
    r = v.post("/console/signup", data={"csrf_token": login_token(form.text),
                                        "email": "wen@example.com", "password": PW,
                                        "invite_code": codes[0]})
    assert r.status_code == 400
    assert "vic@example.com" in a.get("/console/admin/signup").text
    # The link verifies once and credits $3.50 once.
    r = v.get(link.replace(gw.base_url, ""))
    assert r.status_code == 200 and 'id="trial-note"' in r.text and "$3.50" in r.text
    again = v.get(link.replace(gw.base_url, ""))
    assert again.status_code == 200 and 'id="trial-note"' not in again.text
    [acct] = gw.sql("SELECT id FROM accounts WHERE email = 'vic@example.com'")
    assert ledger_ok(gw, acct["id"]) == 3_500_000
    bad = v.get("/console/verify", params={"token": "x" + link.split("token=")[1]})
    assert bad.status_code == 400 and 'id="verify-error"' in bad.text
    # Sign in with the address; the wallet shows the trial.
    s, _ = http_session(gw, "vic@example.com", PW)
    assert "3.5000" in s.get("/console/wallet").text
    # Forgot password: same page for a known and an unknown address; the link works once.
    form = v.get("/console/forgot")
    for email in ("nobody@example.com", "VIC@example.com"):
        r = v.post("/console/forgot", data={"csrf_token": login_token(form.text),
                                            "email": email})
        assert r.status_code == 303 and r.headers["location"] == "/console/check-mail?for=reset"
    reset = next(x for x in box.wait_for("vic@example.com", 2).links() if "reset" in x)
    page = v.get(reset.replace(gw.base_url, ""))
    assert page.status_code == 200 and 'name="token"' in page.text
    token = reset.split("token=")[1]
    r = v.post("/console/reset", data={"csrf_token": login_token(page.text), "token": token,
                                       "password": PW + "2", "confirm": PW + "3"})
    assert r.status_code == 400
    r = v.post("/console/reset", data={"csrf_token": login_token(page.text), "token": token,
                                       "password": PW + "2", "confirm": PW + "2"})
    assert r.status_code == 303 and r.headers["location"] == "/console/login?reset=1"
    assert 'id="reset-done"' in v.get("/console/login?reset=1").text
    # The old session ended; the link is spent; the new password signs in.
    assert s.get("/console/wallet").status_code == 303
    r = v.post("/console/reset", data={"csrf_token": login_token(page.text), "token": token,
                                       "password": PW + "4", "confirm": PW + "4"})
    assert r.status_code == 400 and 'id="reset-error"' in r.text
    assert v.get(reset.replace(gw.base_url, "")).status_code == 400
    http_session(gw, "vic@example.com", PW + "2")
    # The admin revokes the second code; it no longer signs anyone up.
    [inv] = gw.sql("SELECT id FROM invite_codes WHERE used_at IS NULL")
    assert a.post(f"/console/admin/invites/{inv['id']}/revoke",
                  data={"csrf_token": csrf}).status_code == 303
    r = v.post("/console/signup", data={"csrf_token": login_token(form.text),
                                        "email": "wen@example.com", "password": PW,
                                        "invite_code": codes[1]})
    assert r.status_code == 400
    assert ledger_ok(gw, acct["id"]) == 3_500_000
    # A user's session cannot reach the admin page.
    user, ucsrf = http_session(gw, "vic@example.com", PW + "2")
    assert user.get("/console/admin/signup").status_code == 403
    assert user.post("/console/admin/signup", data={"policy": "open", "trial_credit": "100",
                                                    "csrf_token": ucsrf}).status_code == 403


def test_pages_speak_chinese_and_refuse_a_stale_form(gw: InprocConsole) -> None:
    v = httpx.Client(base_url=gw.base_url, timeout=30, headers={"accept-language": "zh-CN"})
    for path, marker in (("/console/signup", "注册"), ("/console/forgot", "忘记密码"),
                         ("/console/check-mail", "查收"), ("/console/reset?token=x", "链接"),
                         ("/console/verify?token=x", "链接")):
        r = v.get(path)
        assert marker in r.text, (path, r.text[:800])
    r = v.post("/console/forgot", data={"csrf_token": "stale", "email": "a@example.com"})
    assert r.status_code == 403
    r = v.post("/console/forgot", data={"csrf_token": login_token(v.get("/console/forgot").text),
                                        "email": "a\x00@example.com"})
    assert r.status_code == 400


def test_browser_sign_up_mail_link_sign_in_trial(tmp_path: Path, box: Mailbox,
                                                 new_page: Callable[..., Page]) -> None:
    """Sign up in Chromium, read the mail from the local SMTP server, open its link, sign
    in, see the trial credit in the wallet."""
    g = InprocConsole(tmp_path, {"signup": {"policy": "open", "trial_credit_usd": "2.75"}},
                      env={"SMARTOKEN_SMTP_URL": box.url}).start()
    try:
        page = new_page(g)
        page.goto("/console/login")
        page.click("#signup-link")
        page.fill("input[name=email]", "Browser.User@example.com")
        page.fill("input[name=password]", PW)
        page.click("button[type=submit]")
        page.wait_for_url("**/console/check-mail")
        mail = box.wait_for("browser.user@example.com")
        [link] = [x for x in mail.links() if "/console/verify?token=" in x]
        page.goto(link)
        assert "$2.75" in page.inner_text("#trial-note")
        page.click("#to-login")
        page.fill("input[name=name]", "browser.user@example.com")
        page.fill("input[name=password]", PW)
        page.click("button[type=submit]")
        page.wait_for_url("**/console/")
        page.goto("/console/wallet")
        assert "2.7500" in page.content()
        assert not page.js_errors  # type: ignore[attr-defined]
        [acct] = g.sql("SELECT id FROM accounts WHERE email = 'browser.user@example.com'")
        assert ledger_ok(g, acct["id"]) == 2_750_000
    finally:
        g.stop()
