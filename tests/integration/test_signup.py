"""Sign-up, verification, password reset and the trial credit over the account API (issue 15),
with a local SMTP server capturing the mails (tests/mailbox.py) and the ledger invariant after
each test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import itsdangerous
import pytest
from sqlalchemy import text

from smartoken.signup.rules import invite_hash, invite_prefix, new_invite_code
from smartoken.store import signup_repo
from tests.mailbox import Mailbox
from tests.services import pg_url  # noqa: F401  (fixture)

PW = "correct-horse-battery"
TRIAL = "5.25"


_clients: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Open keep-alive connections would hold the gateway's graceful stop."""
    yield
    while _clients:
        _clients.pop().close()


def client(gw: Any, **kw: Any) -> httpx.Client:
    c = httpx.Client(base_url=gw.base_url, **kw)
    _clients.append(c)
    return c


@pytest.fixture
def box() -> Iterator[Mailbox]:
    with Mailbox() as b:
        yield b


def gateway(make_inproc: Any, box: Mailbox, policy: str = "open", env: dict[str, str] | None
            = None, **signup: Any) -> Any:
    cfg = {"signup": {"policy": policy, "trial_credit_usd": TRIAL, **signup}}
    return make_inproc(cfg, env={"SMARTOKEN_SMTP_URL": box.url, **(env or {})})


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def mail_link(box: Mailbox, to: str, count: int = 1) -> str:
    mail = box.wait_for(to, count)
    [link] = [x for x in mail.links() if "token=" in x]
    return link


def ledger_ok(gw: Any, account_id: int) -> int:
    [w] = gw.sql("SELECT balance_micro FROM wallets WHERE account_id = :a", a=account_id)
    [t] = gw.sql("SELECT COALESCE(SUM(amount_micro), 0) AS s FROM wallet_transactions "
                 "WHERE account_id = :a", a=account_id)
    assert w["balance_micro"] == t["s"]
    return int(w["balance_micro"])


def execute(gw: Any, query: str, **params: Any) -> None:
    async def go(engine: Any) -> None:
        async with engine.begin() as conn:
            await conn.execute(text(query), params)
    gw.db(go)


def account(gw: Any, email: str) -> dict[str, Any]:
    [row] = gw.sql("SELECT * FROM accounts WHERE email = :e", e=email)
    return row


def test_sign_up_verify_trial_once_and_sign_in(make_inproc: Any, box: Mailbox) -> None:
    gw = gateway(make_inproc, box)
    c = client(gw)
    r = c.post("/account/signup", json={"email": "  Ann.Lee@Example.COM ", "password": PW})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending_verification"
    link = mail_link(box, "ann.lee@example.com")
    assert link.startswith(gw.base_url + "/console/verify?token=")
    row = account(gw, "ann.lee@example.com")
    assert row["email_verified_at"] is None and row["role"] == "user"
    assert row["name"] == "ann.lee@example.com" and ledger_ok(gw, row["id"]) == 0
    r = c.post("/account/verify", json={"token": token_of(link)})
    assert r.status_code == 200 and r.json()["trial_credit_usd"] == "5.250000", r.text
    assert token_of(link) not in gw.log()  # a link is a credential: never logged
    again = c.post("/account/verify", json={"token": token_of(link)})
    assert again.status_code == 200 and again.json()["trial_credit_usd"] == "0.000000"
    assert ledger_ok(gw, row["id"]) == 5_250_000
    [txn] = gw.sql("SELECT * FROM wallet_transactions WHERE account_id = :a", a=row["id"])
    assert (txn["kind"], txn["origin"], txn["request_id"]) == \
        ("credit", "trial", f"trial:{row['id']}")
    # The same address in another case is the same account: enumeration-safe answer, a mail
    # to the owner, no second account.
    r2 = c.post("/account/signup", json={"email": "ANN.LEE@example.com", "password": PW + "x"})
    assert (r2.status_code, r2.json()) == (r.status_code, r.json()) or r2.status_code == 202
    assert r2.json() == {"status": "pending_verification",
                         "message": "If the address can be used, a mail with a link is on "
                                    "its way."}
    owner = box.wait_for("ann.lee@example.com", 2)
    assert "already has one" in owner.text and "token=" not in owner.text
    assert len(gw.sql("SELECT id FROM accounts WHERE email = 'ann.lee@example.com'")) == 1
    # Sign in to the console with the address.
    login = c.get("/console/login")
    csrf = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = c.post("/console/login", data={"name": "ann.lee@example.com", "password": PW,
                                        "csrf_token": csrf})
    assert r.status_code == 303, r.text[:300]
    assert "5.2500" in c.get("/console/wallet").text


def test_closed_refuses_and_invite_codes(make_inproc: Any, box: Mailbox) -> None:
    gw = make_inproc(env={"SMARTOKEN_SMTP_URL": box.url})  # default policy: closed
    c = client(gw)
    r = c.post("/account/signup", json={"email": "a@example.com", "password": PW})
    assert r.status_code == 403 and r.json()["error"]["code"] == "signup_closed"
    assert not gw.sql("SELECT id FROM accounts WHERE email IS NOT NULL") and not box.mails


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_one_invite_code_signs_up_one_account_under_concurrency(
        make_inproc: Any, box: Mailbox, db: str, request: pytest.FixtureRequest) -> None:
    env = {"SMARTOKEN_DATABASE_URL": request.getfixturevalue("pg_url")} if db != "sqlite" \
        else {}
    gw = gateway(make_inproc, box, "invite", env, throttle_per_client=1000)
    code, other = new_invite_code(), new_invite_code()
    gw.db(lambda e: signup_repo.add_invites(e, [(invite_hash(code), invite_prefix(code)),
                                                (invite_hash(other), invite_prefix(other))],
                                            "admin", None, ""))
    c = client(gw)
    r = c.post("/account/signup", json={"email": "x@example.com", "password": PW})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_invite"
    r = c.post("/account/signup", json={"email": "x@example.com", "password": PW,
                                        "invite_code": "inv-guess"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_invite"

    async def race() -> list[int]:
        async with httpx.AsyncClient(base_url=gw.base_url, timeout=60) as ac:
            rs = await asyncio.gather(*(ac.post("/account/signup", json={
                "email": f"racer{i}@example.com", "password": PW, "invite_code": code})
                for i in range(20)))
        return [x.status_code for x in rs]

    codes = asyncio.run(race())
    assert sorted(set(codes)) == [202, 400] and codes.count(202) == 1, codes
    assert len(gw.sql("SELECT id FROM accounts WHERE email LIKE 'racer%'")) == 1
    [inv] = gw.sql("SELECT * FROM invite_codes WHERE code_hash = :h", h=invite_hash(code))
    assert inv["used_by"] is not None
    # An expired or revoked code is refused like an unknown one.
    execute(gw, "UPDATE invite_codes SET expires_at = :t WHERE code_hash = :h",
            t=datetime(2000, 1, 1, tzinfo=UTC), h=invite_hash(other))
    r = c.post("/account/signup", json={"email": "late@example.com", "password": PW,
                                        "invite_code": other})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_invite"


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_concurrent_verification_credits_the_trial_once(
        make_inproc: Any, box: Mailbox, db: str, request: pytest.FixtureRequest) -> None:
    env = {"SMARTOKEN_DATABASE_URL": request.getfixturevalue("pg_url")} if db != "sqlite" \
        else {}
    gw = gateway(make_inproc, box, env=env)
    c = client(gw)
    assert c.post("/account/signup", json={"email": "bo@example.com", "password": PW}
                  ).status_code == 202
    token = token_of(mail_link(box, "bo@example.com"))

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gw.base_url, timeout=60) as ac:
            return await asyncio.gather(*(ac.post("/account/verify", json={"token": token})
                                          for _ in range(50)))

    rs = asyncio.run(race())
    assert {r.status_code for r in rs} == {200}
    assert sum(r.json()["trial_credit_usd"] != "0.000000" for r in rs) == 1
    row = account(gw, "bo@example.com")
    assert ledger_ok(gw, row["id"]) == 5_250_000
    assert len(gw.sql("SELECT id FROM wallet_transactions WHERE account_id = :a",
                      a=row["id"])) == 1


def test_links_tampered_expired_and_reset_used_once(make_inproc: Any, box: Mailbox,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    gw = gateway(make_inproc, box)
    c = client(gw)
    assert c.post("/account/signup", json={"email": "cy@example.com", "password": PW}
                  ).status_code == 202
    token = token_of(mail_link(box, "cy@example.com"))
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), token + "x",
                "", "x" * 5000, "\u00e9t\u00e9", 12, None, ["a"]):
        r = c.post("/account/verify", json={"token": bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["code"] in ("invalid_link", "missing_required_parameter")
    # Expired: a link signed 49 hours ago (the default lifetime is 48).
    real = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: int(time.time()) - 49 * 3600)
    assert c.post("/account/signup/resend", json={"email": "cy@example.com"}
                  ).status_code == 202
    old = token_of(mail_link(box, "cy@example.com", 2))
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", real)
    r = c.post("/account/verify", json={"token": old})
    assert r.status_code == 400 and r.json()["error"]["code"] == "expired_link"
    assert account(gw, "cy@example.com")["email_verified_at"] is None
    # Reset: the link works once; the new password signs in, the old one not.
    assert c.post("/account/password/forgot", json={"email": "CY@example.com"}
                  ).status_code == 202
    reset = token_of(mail_link(box, "cy@example.com", 3))
    assert "/console/reset?token=" in box.wait_for("cy@example.com", 3).text
    r = c.post("/account/password/reset", json={"token": reset, "password": "short"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "weak_password"
    r = c.post("/account/password/reset", json={"token": reset, "password": PW + "-new"})
    assert r.status_code == 200, r.text
    r = c.post("/account/password/reset", json={"token": reset, "password": PW + "-again"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_link"
    [row] = gw.sql("SELECT * FROM accounts WHERE email = 'cy@example.com'")
    from smartoken.auth.passwords import verify_password
    assert verify_password(PW + "-new", row["password_hash"])
    # Following a reset link proves the mailbox: the address counts as verified (trial once).
    assert row["email_verified_at"] is not None and ledger_ok(gw, row["id"]) == 5_250_000


def test_answers_never_tell_whether_an_address_exists(make_inproc: Any, box: Mailbox) -> None:
    gw = gateway(make_inproc, box)
    c = client(gw)
    c.post("/account/signup", json={"email": "dee@example.com", "password": PW})
    box.wait_for("dee@example.com")
    known = c.post("/account/password/forgot", json={"email": "dee@example.com"})
    unknown = c.post("/account/password/forgot", json={"email": "nobody@example.com"})
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    again = c.post("/account/signup", json={"email": "dee@example.com", "password": PW})
    new = c.post("/account/signup", json={"email": "eve@example.com", "password": PW})
    assert (again.status_code, again.json()) == (new.status_code, new.json())
    box.wait_for("dee@example.com", 3)
    assert not box.to("nobody@example.com")
    assert set(again.headers) - {"x-request-id", "date"} == \
        set(new.headers) - {"x-request-id", "date"}


def test_odd_bytes_and_types_never_5xx(make_inproc: Any, box: Mailbox) -> None:
    gw = gateway(make_inproc, box, throttle_per_client=1000)
    c = client(gw)
    bodies: list[Any] = [
        {"email": "a\x00b@example.com", "password": PW},
        {"email": "nul@example.com", "password": "pass\x00word123"},
        {"email": "a@b@example.com", "password": PW},
        {"email": "a@example.com\r\nBcc: e@x.com", "password": PW},
        {"email": "x" * 300 + "@example.com", "password": PW},
        {"email": "a@example.com", "password": "p" * 201},
        {"email": 12, "password": PW}, {"email": ["a"], "password": PW},
        {"email": "a@example.com", "password": 10**30},
        {"email": "a@example.com", "password": PW, "role": "admin"},
        {"email": "a@-bad-.com", "password": PW}, {"email": "@example.com", "password": PW},
        {"email": "a@example", "password": PW},
    ]
    for body in bodies:
        r = c.post("/account/signup", json=body)
        assert r.status_code == 400, (body, r.status_code, r.text)
    for raw in (b"\xff\xfe", b"{", b"[]", b'{"email": "a@example.com"}', b"null",
                b'{"email":"\\u0000@x.com","password":"12345678"}',
                b'{"email":"\\ud800@x.com","password":"12345678"}'):
        r = c.post("/account/signup", content=raw,
                   headers={"content-type": "application/json"})
        assert r.status_code == 400, (raw, r.text)
        if b"a@example.com" not in raw:  # that one is a valid reset request
            assert c.post("/account/password/forgot", content=raw).status_code == 400
        assert c.post("/account/verify", content=raw).status_code == 400
    # An internationalised address is fine.
    assert c.post("/account/signup", json={"email": "zhang@例子.中国", "password": PW}
                  ).status_code == 202
    assert not gw.sql("SELECT id FROM accounts WHERE role = 'admin' AND email IS NOT NULL")
    assert "Traceback" not in gw.log()


def test_throttled_per_address_and_public_url_wins_over_host(make_inproc: Any,
                                                             box: Mailbox) -> None:
    gw = gateway(make_inproc, box, env={"SMARTOKEN_PUBLIC_URL": "https://gw.example.com"})
    c = client(gw, headers={"host": "evil.example"})
    for _ in range(3):
        assert c.post("/account/password/forgot", json={"email": "fay@example.com"}
                      ).status_code == 202
    r = c.post("/account/password/forgot", json={"email": "fay@example.com"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "too_many_requests"
    assert c.post("/account/signup", json={"email": "gus@example.com", "password": PW}
                  ).status_code == 202
    link = mail_link(box, "gus@example.com")
    assert link.startswith("https://gw.example.com/console/verify?token="), link
    assert "evil.example" not in box.wait_for("gus@example.com").text


def test_a_forged_host_never_reaches_a_mail_without_public_url(make_inproc: Any,
                                                              box: Mailbox) -> None:
    """Reset poisoning: with no public URL, a visitor asking for someone's reset link with a
    forged Host header must not get a link to their own server in that person's mail."""
    gw = gateway(make_inproc, box)
    c = client(gw)
    assert c.post("/account/signup", json={"email": "hal@example.com", "password": PW}
                  ).status_code == 202
    assert mail_link(box, "hal@example.com").startswith(gw.base_url + "/console/verify?")
    evil = client(gw, headers={"host": "evil.example", "x-forwarded-host": "evil.example"})
    assert evil.post("/account/password/forgot", json={"email": "hal@example.com"}
                     ).status_code == 202
    reset = box.wait_for("hal@example.com", count=2)
    assert "evil.example" not in reset.text and "evil.example" not in (reset.html or "")
    assert [x for x in reset.links() if x.startswith(gw.base_url + "/console/reset?")]


def test_admin_api_policy_and_invites(make_inproc: Any, box: Mailbox) -> None:
    master = "mk-signup-master-key-0123456789"
    gw = make_inproc({"signup": {"policy": "closed"}},
                     env={"SMARTOKEN_SMTP_URL": box.url, "SMARTOKEN_MASTER_KEY": master})
    admin = client(gw, headers={"authorization": f"Bearer {master}"})
    user_key = gw.key("someone", credit="1")
    user = client(gw, headers={"authorization": f"Bearer {user_key}"})
    assert admin.get("/admin/signup").json()["policy"] == "closed"
    for body in ({"policy": "wide"}, {"trial_credit_usd": "-1"}, {"trial_credit_usd": 1.5},
                 {"trial_credit_usd": "20000"}, {"policy": "open", "x": 1}):
        assert admin.patch("/admin/signup", json=body).status_code == 400, body
    assert user.patch("/admin/signup", json={"policy": "open"}).status_code == 403
    assert user.post("/admin/invites", json={}).status_code == 403
    r = admin.patch("/admin/signup", json={"policy": "invite", "trial_credit_usd": "1.5"})
    assert r.status_code == 200 and r.json()["trial_credit_usd"] == "1.500000", r.text
    for body in ({"count": 0}, {"count": 101}, {"count": True}, {"expires_in": -5},
                 {"expires_at": "2001-01-01T00:00:00Z"}, {"note": "x" * 201}):
        assert admin.post("/admin/invites", json=body).status_code == 400, body
    r = admin.post("/admin/invites", json={"count": 3, "expires_in": 3600, "note": "api"})
    assert r.status_code == 201 and len(set(r.json()["codes"])) == 3
    codes = r.json()["codes"]
    listing = admin.get("/admin/invites").json()["data"]
    assert [i["state"] for i in listing] == ["open"] * 3
    assert all(c not in str(listing) for c in codes)
    assert admin.post(f"/admin/invites/{listing[0]['id']}/revoke").json()["revoked"] is True
    assert admin.post(f"/admin/invites/{listing[0]['id']}/revoke").json()["revoked"] is False
    assert admin.post("/admin/invites/99999999999/revoke").status_code == 404
    anon = client(gw)
    ok = [anon.post("/account/signup", json={"email": f"api{i}@example.com", "password": PW,
                                            "invite_code": c}).status_code
          for i, c in enumerate(codes)]
    assert sorted(ok) == [202, 202, 400]
    states = sorted(i["state"] for i in admin.get("/admin/invites").json()["data"])
    assert states == ["revoked", "used", "used"]
