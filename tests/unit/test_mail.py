"""The mailer seam (smartoken/notify/mail.py) against a local SMTP server (tests/mailbox.py)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

import pytest
import yaml

from smartoken.config import ConfigError, load_settings
from smartoken.logs import Redactor, secrets_of
from smartoken.notify.mail import (
    LogMailer,
    MailError,
    SmtpMailer,
    mailer_for,
    parse_smtp_url,
)
from tests.harness import free_port
from tests.mailbox import Mailbox

SECRET = "p@ss:w/rd-s3cr3t"


def test_url_forms() -> None:
    t = parse_smtp_url("smtp://u%40x:p%3Aq@mail.example.com:2525?starttls=1&timeout=3")
    assert (t.host, t.port, t.username, t.password, t.starttls, t.implicit_tls, t.timeout) == \
        ("mail.example.com", 2525, "u@x", "p:q", True, False, 3.0)
    assert parse_smtp_url("smtps://mail.example.com").port == 465
    assert parse_smtp_url("smtp://mail.example.com?starttls=1").port == 587
    plain = parse_smtp_url("smtp://mail.example.com")
    assert (plain.port, plain.starttls, plain.username, plain.password) == (25, None, None, None)
    assert "p:q" not in repr(t) and "p:q" not in t.describe()


@pytest.mark.parametrize("url", [
    "http://mail.example.com", "smtp://", "smtp://host:99999", "smtp://host/path",
    "smtp://host?starttls=maybe", "smtps://host?starttls=1", "smtp://host?bcc=x",
    "smtp://host?timeout=-1", "smtp://host?timeout=abc", "smtp://[::1",
])
def test_bad_urls_are_refused_without_the_password(url: str) -> None:
    url = url.replace("://", f"://user:{SECRET}@", 1) if "://" in url else url
    with pytest.raises(ValueError) as exc:
        parse_smtp_url(url)
    assert SECRET not in str(exc.value)
    with pytest.raises(ConfigError) as cexc:
        load_settings(None, env={"SMARTOKEN_SMTP_URL": url})
    assert SECRET not in str(cexc.value)


def test_settings_from_env_and_file(tmp_path) -> None:
    s = load_settings(None, env={"SMARTOKEN_SMTP_URL": f"smtp://me:{quote(SECRET, safe='')}@h:26",
                                 "SMARTOKEN_MAIL_FROM": "Gate <noreply@example.com>",
                                 "SMARTOKEN_PUBLIC_URL": "https://gw.example.com/"})
    assert s.smtp is not None and s.smtp.password == SECRET
    assert s.mail_from == "Gate <noreply@example.com>"
    assert s.public_url == "https://gw.example.com"
    assert SECRET not in repr(s)
    assert SECRET in secrets_of(s)  # so the log redactor masks it
    cfg = tmp_path / "c.yaml"
    cfg.write_text("smtp_url: smtps://mail.example.com\nmail_from: a@example.com\n"
                   "public_url: http://x.example\n")
    f = load_settings(cfg, env={})
    assert f.smtp is not None and f.smtp.implicit_tls and f.mail_from == "a@example.com"
    assert load_settings(None, env={}).smtp is None
    for key, bad in (("mail_from", "not an address"), ("mail_from", "a@b\r\nBcc: c@d"),
                     ("public_url", "ftp://x"), ("public_url", "https://x/\r\nSet-Cookie")):
        cfg.write_text(yaml.safe_dump({key: bad}))
        with pytest.raises(ConfigError) as exc:
            load_settings(cfg, env={})
        assert exc.value.key == key


def test_smtp_delivers_text_and_html_with_auth() -> None:
    with Mailbox(user="me", password=SECRET) as box:
        mailer = SmtpMailer(parse_smtp_url(box.url), "Gate <noreply@example.com>")
        asyncio.run(mailer.send("Ann <ann@example.com>", "Welcome 欢迎", "hi 你好 https://x/y?t=1",
                                "<p>hi</p>"))
        mail = box.wait_for("ann@example.com")
    assert mail.login == "me" and mail.envelope_from == "noreply@example.com"
    assert mail.subject == "Welcome 欢迎" and "你好" in mail.text
    assert (mail.html or "").strip() == "<p>hi</p>"
    assert mail.links() == ["https://x/y?t=1"]
    assert mail.message["Message-ID"].endswith("@example.com>")


def test_refusals_and_failures_never_leak_the_password(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with Mailbox(user="me", password="right-one") as box:
        wrong = SmtpMailer(parse_smtp_url(box.url.replace("right-one", quote(SECRET, safe=""))))
        with pytest.raises(MailError) as exc:
            asyncio.run(wrong.send("ann@example.com", "s", "t"))
        assert SECRET not in str(exc.value) and not box.mails
    down = SmtpMailer(parse_smtp_url(f"smtp://me:{quote(SECRET, safe='')}@127.0.0.1:{free_port()}"
                                     "?starttls=0&timeout=2"))
    with pytest.raises(MailError) as exc:
        asyncio.run(down.send("ann@example.com", "s", "t"))
    assert SECRET not in str(exc.value)
    assert SECRET not in caplog.text and "ann@example.com" not in caplog.text


@pytest.mark.parametrize("to,subject", [
    ("ann@example.com\r\nBcc: eve@example.com", "s"), ("ann@example.com", "s\r\nBcc: e@x"),
    ("ann@example.com\0", "s"), ("nobody", "s"), ("a@b@c", "s"), ("", "s"),
])
def test_header_injection_is_refused(to: str, subject: str) -> None:
    with Mailbox() as box:
        for mailer in (SmtpMailer(parse_smtp_url(box.url)), LogMailer()):
            with pytest.raises(MailError):
                asyncio.run(mailer.send(to, subject, "body"))
        assert not box.mails


def test_log_mailer_logs_no_body(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    mailer = mailer_for(None, "a@example.com")
    assert isinstance(mailer, LogMailer)
    asyncio.run(mailer.send("ann@example.com", "Verify", "https://gw/verify?t=SECRETTOKEN"))
    assert "Verify" in caplog.text and "SECRETTOKEN" not in caplog.text
    assert "ann@example.com" not in caplog.text and "a***@example.com" in caplog.text


def test_redactor_masks_the_smtp_password() -> None:
    s = load_settings(None, env={"SMARTOKEN_SMTP_URL": f"smtp://me:{quote(SECRET, safe='')}@h"})
    r = Redactor(secrets_of(s))
    assert SECRET not in r(f"oops {SECRET}")


def test_app_state_carries_the_mailer(tmp_path) -> None:
    """Alerts and sign-up send through ``AppState.mailer``: SMTP when configured."""
    from smartoken.state import app_state

    async def mailers() -> tuple[object, object]:
        out = []
        for env in ({"SMARTOKEN_SMTP_URL": "smtp://127.0.0.1:1?starttls=0"}, {}):
            settings = load_settings(None, env=env, data_dir=str(tmp_path))
            async with app_state(settings, env={}) as state:
                out.append(state.mailer)
        return out[0], out[1]

    smtp, none = asyncio.run(mailers())
    assert isinstance(smtp, SmtpMailer) and isinstance(none, LogMailer)
