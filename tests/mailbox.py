"""A local SMTP server (aiosmtpd) that keeps every mail it receives, for tests of the mailer,
sign-up, password reset and alerts.

    with Mailbox() as box:                       # or Mailbox(user="u", password="p")
        settings env: SMARTOKEN_SMTP_URL=box.url
        ...
        mail = box.wait_for("someone@example.com")
        mail.text, mail.html, mail.links()

The server runs in aiosmtpd's own thread on a free loopback port; ``stop()`` ends it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import warnings
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.harness import held_port

LINK = re.compile(r"https?://[^\s\"'<>]+")


@dataclass(frozen=True)
class Mail:
    envelope_from: str
    envelope_to: tuple[str, ...]
    message: EmailMessage
    login: str | None  # the user that authenticated, if any

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""  # type: ignore[attr-defined]

    @property
    def html(self) -> str | None:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else None  # type: ignore[attr-defined]

    def links(self) -> list[str]:
        return LINK.findall(self.text)


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content or envelope.content,
                                 policy=policy.default)
        login = session.auth_data.login.decode() if isinstance(
            session.auth_data, LoginPassword) else None
        mail = Mail(envelope.mail_from, tuple(envelope.rcpt_tos), msg,  # type: ignore[arg-type]
                    login)
        with self.box.lock:
            self.box.mails.append(mail)
        return "250 OK"


class _Quiet(Controller):
    """AUTH without TLS is what a loopback test wants: without aiosmtpd's warning each time."""

    def factory(self) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger("mail.log").disabled = True
            try:
                return super().factory()
            finally:
                logging.getLogger("mail.log").disabled = False


class Mailbox:
    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        self.user, self.password = user, password
        self.mails: list[Mail] = []
        self.lock = threading.Lock()
        self.port = held_port(self)
        kw: dict[str, Any] = {}
        if user is not None:
            kw = {"authenticator": self._authenticate, "auth_required": True,
                  "auth_require_tls": False}
        self.controller = _Quiet(_Handler(self), hostname="127.0.0.1", port=self.port, **kw)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    @property
    def url(self) -> str:
        cred = (f"{quote(self.user, safe='')}:{quote(self.password or '', safe='')}@"
                if self.user is not None else "")
        return f"smtp://{cred}127.0.0.1:{self.port}?starttls=0"

    def start(self) -> Mailbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> Mailbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if address.lower() in
                    (a.lower() for a in m.envelope_to)]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> Mail:
        """The ``count``-th mail to ``address`` (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.to(address)
            if len(got) >= count:
                return got[count - 1]
            time.sleep(0.02)
        raise AssertionError(f"no mail #{count} to {address} within {timeout}s; "
                             f"got {[m.envelope_to for m in self.mails]}")
