"""Console sign-in state: server-side sessions behind a signed, HttpOnly, SameSite=Lax cookie,
and CSRF tokens.

The cookie carries a random 256-bit session token signed with itsdangerous; the database keeps
only the token's SHA-256 (``console_sessions``), so logout ends a session everywhere and a
database reader cannot sign in. The signing secret is generated on first start and kept in the
database (``console_settings``), shared by every replica, never in the code. Each session has its
own CSRF token, required on every state-changing form (``csrf_token`` field) and XHR
(``X-CSRF-Token`` header). The sign-in form, which has no session yet, is protected by a
double-submit cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from smartoken.console import store

if TYPE_CHECKING:  # cryptography is loaded with the first flash message
    from cryptography.fernet import Fernet

COOKIE = "st_session"
LOGIN_COOKIE = "st_login_csrf"
FLASH_COOKIE = "st_flash"
FLASH_SECONDS = 120
SESSION_DAYS = 7
SECRET_NAME = "session_secret"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str
    csrf: str
    sid: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Sessions:
    def __init__(self, engine: AsyncEngine, secret: str) -> None:
        self._engine = engine
        self._signer = URLSafeTimedSerializer(secret, salt="smartoken-console-session")
        self._secret = secret

    @cached_property
    def _fernet(self) -> Fernet:
        """One-time messages (a new key's secret) travel encrypted in a short-lived cookie, so
        a create can redirect (no resubmission on reload) without the secret touching storage.
        Made on first use: cryptography costs a worker ~8 MiB (issue 16)."""
        from cryptography.fernet import Fernet

        return Fernet(base64.urlsafe_b64encode(
            hashlib.sha256(b"smartoken-console-flash:" + self._secret.encode()).digest()))

    @classmethod
    async def open(cls, engine: AsyncEngine) -> Sessions:
        """Load the signing secret, creating it on first start."""
        secret = await store.setting_once(engine, SECRET_NAME, secrets.token_urlsafe(48))
        return cls(engine, secret)

    @staticmethod
    def _sid(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    async def current(self, request: Request) -> User | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            token = self._signer.loads(raw, max_age=SESSION_DAYS * 86400)
        except BadSignature:
            return None
        if not isinstance(token, str):
            return None
        sid = self._sid(token)
        row = await store.session_account(self._engine, sid)
        if row is None:
            return None
        expires = row["expires_at"]
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires <= datetime.now(UTC):
            return None
        return User(int(row["id"]), str(row["name"]), str(row["role"]), str(row["csrf"]), sid)

    async def start(self, request: Request, response: Response, account_id: int) -> None:
        token = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(days=SESSION_DAYS)
        await store.create_session(self._engine, self._sid(token), account_id,
                                   secrets.token_urlsafe(32), expires)
        set_cookie(request, response, COOKIE, self._signer.dumps(token),
                   SESSION_DAYS * 86400)
        response.delete_cookie(LOGIN_COOKIE, path="/console")

    async def end(self, user: User, response: Response) -> None:
        await store.delete_session(self._engine, user.sid)
        response.delete_cookie(COOKIE, path="/")


    def flash(self, request: Request, response: Response, user: User, message: str) -> None:
        token = self._fernet.encrypt(f"{user.sid}:{message}".encode()).decode()
        response.set_cookie(FLASH_COOKIE, token, max_age=FLASH_SECONDS, path="/console",
                            httponly=True, samesite="strict", secure=is_https(request))

    def pop_flash(self, request: Request, response: Response, user: User) -> str | None:
        """The one-time message for this session, if any; the cookie is cleared either way."""
        raw = request.cookies.get(FLASH_COOKIE)
        if not raw:
            return None
        response.delete_cookie(FLASH_COOKIE, path="/console")
        from cryptography.fernet import InvalidToken

        try:
            plain = self._fernet.decrypt(raw.encode(), ttl=FLASH_SECONDS).decode()
        except InvalidToken:
            return None
        sid, _, message = plain.partition(":")
        return message if hmac.compare_digest(sid, user.sid) else None


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or \
        request.headers.get("x-forwarded-proto", "").lower() == "https"


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/" if name == COOKIE else "/console",
                        httponly=True, samesite="lax", secure=is_https(request))


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(
        expected.encode(), given.encode())


def login_csrf(request: Request) -> str:
    """The sign-in form's double-submit token: the cookie's value, or a new one."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
