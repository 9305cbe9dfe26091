"""Sign-up, verification and password reset: the rules of issue 15 in one place, used by the
account API (api/signup.py) and the console (console/signup.py).

- The policy (closed, invite, open) and the trial credit come from the settings, overridden at
  run time by an admin (``console_settings``: ``signup_policy``, ``signup_trial_micro``).
- Answers never tell whether an address has an account: a sign-up with a known address answers
  as a new one (and mails the owner instead), a reset request answers the same whether or not
  the address exists; both hash a password or not alike, and mail from a tracked background
  task so that SMTP time shows in no response.
- Sign-up and reset requests are throttled per address typed and per client (``Throttled``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.auth.passwords import hash_password
from smartoken.cluster.shared_limits import SharedLoginThrottle
from smartoken.config import SIGNUP_POLICIES, Settings
from smartoken.console import store as console_store
from smartoken.console.session import SECRET_NAME
from smartoken.console.throttle import LoginThrottle
from smartoken.notify.mail import Mailer, MailError
from smartoken.signup import mails
from smartoken.signup.links import LinkError, LinkSigner, fingerprint
from smartoken.signup.rules import (
    RuleError,
    check_invite,
    check_password,
    invite_hash,
    normalize_email,
)
from smartoken.state import AppState
from smartoken.store import repo, signup_repo
from smartoken.store.schema import invite_codes

log = logging.getLogger("smartoken.signup")
POLICY_SETTING, TRIAL_SETTING = "signup_policy", "signup_trial_micro"
MAIL_WAIT = 10.0  # seconds the shutdown waits for mails being handed to the server
# A mail leaves this long after the request that caused it, once its answer is out: the SMTP
# conversation then shares no time with the answer (measured: a reset request for a known
# address answered in 19 ms against 5 ms for an unknown one while its mail left at once).
MAIL_DELAY = 0.25


class SignupClosed(Exception):
    """Sign-up is closed (admins create accounts)."""


class Throttled(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f}s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Policy:
    mode: str  # closed | invite | open
    trial_micro: int


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who asks: the client address (throttling) and the language of the mails."""

    address: str
    locale: str = "en"


class Signup:
    def __init__(self, engine: AsyncEngine, settings: Settings, mailer: Mailer,
                 signer: LinkSigner, throttle: SharedLoginThrottle) -> None:
        self.engine, self.settings, self.mailer = engine, settings, mailer
        self.signer, self.throttle = signer, throttle
        self._mails: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, state: AppState) -> Signup:
        """Built in the lifespan, beside the console: the mailer and Redis of ``state``."""
        engine, settings, cluster = state.engine, state.settings, state.cluster
        secret = await console_store.setting_once(engine, SECRET_NAME, secrets.token_urlsafe(48))
        s = settings.signup
        signer = LinkSigner(secret, s.verify_hours * 3600, s.reset_minutes * 60)
        # Requests per address typed and per client, per 15 minutes; in Redis when configured
        # (every replica counts together), like the sign-in throttle.
        throttle = SharedLoginThrottle(
            LoginThrottle(per_name=s.per_email, per_address=s.per_client, window=900),
            cluster.redis if cluster else None,
            (cluster.options.prefix if cluster else "st:") + "mail:",
            bool(cluster and cluster.options.fail_open))
        if not settings.public_url and s.policy != "closed":
            log.warning("SMARTOKEN_PUBLIC_URL is not set: links in mails point at %s (set it to "
                        "the address users reach the gateway at)", link_base(settings))
        return cls(engine, settings, state.mailer, signer, throttle)

    async def close(self) -> None:
        """Let mails being sent finish (bounded), then cancel the rest."""
        if self._mails:
            _, pending = await asyncio.wait(self._mails, timeout=MAIL_WAIT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------ policy

    async def policy(self) -> Policy:
        mode = await console_store.get_setting(self.engine, POLICY_SETTING)
        trial = await console_store.get_setting(self.engine, TRIAL_SETTING)
        s = self.settings.signup
        return Policy(mode if mode in SIGNUP_POLICIES else s.policy,
                      int(trial) if trial and trial.isdigit() else s.trial_credit)

    async def set_policy(self, mode: str, trial_micro: int) -> None:
        if mode not in SIGNUP_POLICIES or trial_micro < 0:
            raise ValueError("bad policy")
        await console_store.set_setting(self.engine, POLICY_SETTING, mode)
        await console_store.set_setting(self.engine, TRIAL_SETTING, str(trial_micro))

    # ------------------------------------------------------------ sign-up

    async def sign_up(self, email: object, password: object, invite: object,
                      visitor: Visitor) -> None:
        """Create an unverified account and mail its verification link; or, for an address
        that has an account, mail its owner. The caller answers "check your mail" either way.
        Raises ``SignupClosed``, ``RuleError``, ``Throttled``."""
        policy = await self.policy()
        if policy.mode == "closed":
            raise SignupClosed()
        address = normalize_email(email)
        secret = check_password(password)
        code_hash = None
        if policy.mode == "invite":
            code_hash = invite_hash(check_invite(invite))
            if not await self._invite_usable(code_hash):
                raise _bad_invite()
        await self._brake(address, visitor)
        hashed = await asyncio.to_thread(hash_password, secret)
        existing = await signup_repo.account_by_email(self.engine, address)
        if existing is None:
            name = address if len(address) <= 100 and not await signup_repo.name_taken(
                self.engine, address) else f"user-{secrets.token_hex(5)}"
            try:
                account_id = await signup_repo.create_account(self.engine, name, address,
                                                              hashed, code_hash)
            except signup_repo.InviteRefused:  # taken by a concurrent sign-up
                raise _bad_invite() from None
            except repo.Conflict:  # the same address signed up concurrently: it mails
                log.info("sign-up raced for %s", _mask(address))
                return
            log.info("account %d signed up (%s)", account_id, policy.mode)
            self._send_verification(account_id, address, visitor)
            return
        if existing["email_verified_at"] is None and existing["disabled_at"] is None:
            self._send_verification(int(existing["id"]), address, visitor)  # lost the mail?
            return
        login = self._link(visitor, "/console/login", {})
        forgot = self._link(visitor, "/console/forgot", {})
        self._queue(address, mails.already_registered_mail(visitor.locale, login, forgot))

    async def resend_verification(self, email: object, visitor: Visitor) -> None:
        """Mail a fresh link to an unverified address; the same answer for any address."""
        address = normalize_email(email)
        await self._brake(address, visitor)
        row = await signup_repo.account_by_email(self.engine, address)
        if row is not None and row["email_verified_at"] is None and row["disabled_at"] is None:
            self._send_verification(int(row["id"]), address, visitor)

    async def verify(self, token: object) -> signup_repo.Verified:
        """Follow a verification link. Raises ``LinkError``."""
        claim = self.signer.read_verify(token)
        policy = await self.policy()
        done = await signup_repo.verify_email(self.engine, claim.account_id, claim.email,
                                              policy.trial_micro)
        if done is None:
            raise LinkError()
        if done.trial_txn is not None:
            log.info("account %d verified; trial credit %d micro-USD", claim.account_id,
                     done.trial_micro)
        return done

    # ------------------------------------------------------------ password reset

    async def request_reset(self, email: object, visitor: Visitor) -> None:
        """Mail a reset link when the address has a (live) account; the same answer else."""
        address = normalize_email(email)
        await self._brake(address, visitor)
        row = await signup_repo.account_by_email(self.engine, address)
        known = row is not None and row["disabled_at"] is None
        # The same work either way (a token signed, a mail written), so that time tells
        # nothing; only a known address gets the mail.
        token = self.signer.reset_token(int(row["id"]) if row else 0,
                                        row["password_hash"] if row else None)
        link = self._link(visitor, "/console/reset", {"token": token})
        mail = mails.reset_mail(visitor.locale, link, self.settings.signup.reset_minutes)
        if known:
            self._queue(address, mail)

    async def check_reset(self, token: object) -> dict[str, Any]:
        """The account a reset link is for, if the link still works. Raises ``LinkError``."""
        claim = self.signer.read_reset(token)
        row = await repo.get_account(self.engine, account_id=claim.account_id)
        if row is None or row["disabled_at"] is not None or \
                fingerprint(row["password_hash"]) != claim.fingerprint:
            raise LinkError()
        return row

    async def reset(self, token: object, password: object) -> int:
        """Set a new password through a reset link (once: the link names the old password),
        end the account's console sessions, and count the address as verified. Raises
        ``LinkError`` or ``RuleError``."""
        secret = check_password(password)
        row = await self.check_reset(token)
        hashed = await asyncio.to_thread(hash_password, secret)
        account_id = int(row["id"])
        if not await signup_repo.set_password_ending_sessions(
                self.engine, account_id, hashed, row["password_hash"]):
            raise LinkError()  # a concurrent reset with the same link won
        if row.get("email") and row.get("email_verified_at") is None:
            policy = await self.policy()  # the link reached the mailbox: that verifies it
            await signup_repo.verify_email(self.engine, account_id, str(row["email"]),
                                           policy.trial_micro)
        log.info("account %d password reset by mail link", account_id)
        return account_id

    # ------------------------------------------------------------ helpers

    async def _invite_usable(self, code_hash: str) -> bool:
        at = repo.now()
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(invite_codes.c.used_at, invite_codes.c.revoked_at,
                                             invite_codes.c.expires_at)
                                      .where(invite_codes.c.code_hash == code_hash))).first()
        if row is None or row.used_at is not None or row.revoked_at is not None:
            return False
        expires = row.expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=at.tzinfo)
        return expires is None or expires > at

    async def _brake(self, address: str, visitor: Visitor) -> None:
        wait = await self.throttle.retry_after(address, visitor.address)
        if wait is not None:
            raise Throttled(max(1.0, wait))
        await self.throttle.failed(address, visitor.address)  # every request counts

    def _link(self, visitor: Visitor, path: str, query: dict[str, str]) -> str:
        return link_base(self.settings) + path + (f"?{urlencode(query)}" if query else "")

    def _send_verification(self, account_id: int, address: str, visitor: Visitor) -> None:
        token = self.signer.verify_token(account_id, address)
        link = self._link(visitor, "/console/verify", {"token": token})
        self._queue(address, mails.verify_mail(visitor.locale, link,
                                               self.settings.signup.verify_hours))

    def _queue(self, to: str, mail: mails.Mail) -> None:
        task = asyncio.create_task(self._deliver(to, mail), name="signup-mail")
        self._mails.add(task)
        task.add_done_callback(self._mails.discard)

    async def _deliver(self, to: str, mail: mails.Mail) -> None:
        await asyncio.sleep(MAIL_DELAY)
        try:
            await self.mailer.send(to, mail.subject, mail.text, mail.html)
        except MailError as exc:  # logged without the link (a credential)
            log.warning("mail %r to %s not sent: %s", mail.subject, _mask(to), exc)
        except Exception:
            log.exception("mail %r to %s failed", mail.subject, _mask(to))


def _bad_invite() -> RuleError:
    return RuleError("This invite code is not valid (unknown, used, revoked or expired).",
                     "invalid_invite", "invite_code")


def _mask(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


__all__ = ["LinkError", "Policy", "RuleError", "Signup", "SignupClosed", "Throttled",
           "Visitor"]


def link_base(settings: Settings) -> str:
    """Where links in mails point: ``public_url``, else the address the gateway listens on
    (``localhost`` for a wildcard bind). Never the request's ``Host`` header: a visitor could
    forge it and receive someone else's reset link at their own server."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"
