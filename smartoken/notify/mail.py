"""The mailer seam: one ``Mailer`` contract, an SMTP implementation, a logging no-op.

Sign-up, password reset and alerts send mail through ``AppState.mailer`` and never talk to an
SMTP library themselves. ``SMARTOKEN_SMTP_URL`` (or ``smtp_url:`` in the YAML file) names the
server::

    smtp://user:pass@mail.example.com:587?starttls=1   plain, then STARTTLS (required)
    smtps://user:pass@mail.example.com                 TLS from the first byte (port 465)
    smtp://127.0.0.1:1025?starttls=0                   a local relay, no TLS

``starttls`` absent means STARTTLS when the server offers it. User and password are
percent-decoded. With no URL the ``LogMailer`` logs who would have got which subject (never the
body: it holds sign-in links) and sends nothing. No implementation ever logs the password.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, make_msgid, parseaddr
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("smartoken.mail")
DEFAULT_FROM = "SmarToken <smartoken@localhost>"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class MailError(Exception):
    """A mail could not be handed to the server; the message never holds the password."""


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        """Send one mail; raises ``MailError`` when it could not be handed over."""
        ...


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    implicit_tls: bool = False  # smtps://
    starttls: bool | None = None  # None: when offered
    timeout: float = 10.0

    def describe(self) -> str:
        """For logs and the admin's eyes: no credentials."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp[s]://[user[:pass]@]host[:port][?starttls=0|1&timeout=s]``; raises ``ValueError``
    whose message never repeats the password."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("not a valid smtp:// or smtps:// URL") from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must look like smtp://user:pass@host:port or smtps://host")
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("takes no path or fragment")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    for extra in set(query) - {"starttls", "timeout"}:
        raise ValueError(f"unknown option {extra!r} (starttls, timeout)")
    starttls: bool | None = None
    if "starttls" in query:
        value = query["starttls"].lower()
        if value not in (*_TRUE, *_FALSE):
            raise ValueError("starttls must be 0 or 1")
        starttls = value in _TRUE
    implicit = parts.scheme == "smtps"
    if implicit and starttls:
        raise ValueError("smtps:// is TLS already; starttls=1 applies to smtp:// only")
    try:
        timeout = float(query.get("timeout", "10"))
    except ValueError:
        raise ValueError("timeout must be a number of seconds") from None
    if not 0 < timeout <= 300:
        raise ValueError("timeout must be in (0, 300] seconds")
    default_port = 465 if implicit else 587 if starttls else 25
    return SmtpTarget(
        host=parts.hostname, port=port or default_port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        implicit_tls=implicit, starttls=False if implicit else starttls, timeout=timeout,
    )


def check_address(address: str) -> str:
    """``address`` if it is one mailbox fit for a header; raises ``MailError`` otherwise (no
    CR, LF or NUL: a header can never be injected through a recipient or a subject)."""
    if any(c in address for c in "\r\n\0") or len(address) > 320:
        raise MailError("invalid mail address")
    _, addr = parseaddr(address)
    if "@" not in addr or addr.count("@") != 1 or " " in addr:
        raise MailError("invalid mail address")
    return address


def build_message(sender: str, to: str, subject: str, text: str,
                  html: str | None = None) -> EmailMessage:
    check_address(to)
    if any(c in subject for c in "\r\n\0"):
        raise MailError("a subject holds no line breaks")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


class SmtpMailer:
    """One SMTP connection per mail: mail is rare (sign-ups, resets, alerts), a pool is not
    worth its failure modes."""

    def __init__(self, target: SmtpTarget, sender: str = DEFAULT_FROM) -> None:
        self.target, self.sender = target, sender

    async def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        import aiosmtplib  # mail is rare: loaded with the first one

        msg = build_message(self.sender, to, subject, text, html)
        t = self.target
        try:
            await aiosmtplib.send(
                msg, hostname=t.host, port=t.port, username=t.username, password=t.password,
                use_tls=t.implicit_tls, start_tls=t.starttls, timeout=t.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # The library's messages hold the server's reply, never our password; still,
            # name only the class and the server.
            log.warning("mail to %s not sent via %s: %s", _mask(to), t.describe(),
                        type(exc).__name__)
            raise MailError(f"the mail server {t.describe()} refused or did not answer "
                            f"({type(exc).__name__})") from None
        log.info("mail sent via %s: %r", t.describe(), subject)


class LogMailer:
    """No SMTP configured: log that a mail would have been sent, send nothing. The body is
    never logged (verification and reset links are credentials)."""

    def __init__(self, sender: str = DEFAULT_FROM) -> None:
        self.sender = sender

    async def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        build_message(self.sender, to, subject, text, html)  # the same refusals as SMTP
        log.warning("no SMTP server configured (SMARTOKEN_SMTP_URL): mail %r to %s not sent",
                    subject, _mask(to))


def _mask(address: str) -> str:
    """``a***@example.com``: enough to tell mails apart in a log, not a list of customers."""
    local, _, domain = parseaddr(address)[1].partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mailer_for(target: SmtpTarget | None, sender: str) -> Mailer:
    return SmtpMailer(target, sender) if target is not None else LogMailer(sender)


def format_sender(value: str) -> str:
    """A ``From`` header from ``SMARTOKEN_MAIL_FROM`` (``a@b`` or ``Name <a@b>``); raises
    ``ValueError``."""
    try:
        check_address(value)
    except MailError:
        raise ValueError("must be a mail address, e.g. SmarToken <noreply@example.com>") from None
    name, addr = parseaddr(value)
    return formataddr((name, addr)) if name else addr
