"""Signed, expiring links for email verification and password reset.

The signing key is derived from the console's signing secret (generated on first start, kept in
``console_settings``, shared by every replica): a link made by one replica works on another,
and rotating that secret voids every link in flight. A verification link names the account
and the address (an address changed since no longer verifies); a reset link names the account
and a fingerprint of its current password hash, so it stops working once the password changed
(single use) without storing anything.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

VERIFY, RESET = "smartoken-verify-email", "smartoken-reset-password"


class LinkError(ValueError):
    """The link is tampered with, malformed, or ``expired`` (then ``expired`` is True)."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


@dataclass(frozen=True, slots=True)
class VerifyClaim:
    account_id: int
    email: str


@dataclass(frozen=True, slots=True)
class ResetClaim:
    account_id: int
    fingerprint: str


def fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256(("pw:" + (password_hash or "")).encode()).hexdigest()[:24]


class LinkSigner:
    def __init__(self, secret: str, verify_seconds: int, reset_seconds: int) -> None:
        key = hmac.new(secret.encode(), b"smartoken-mail-links", hashlib.sha256).hexdigest()
        self._verify = URLSafeTimedSerializer(key, salt=VERIFY)
        self._reset = URLSafeTimedSerializer(key, salt=RESET)
        self.verify_seconds, self.reset_seconds = verify_seconds, reset_seconds

    def verify_token(self, account_id: int, email: str) -> str:
        return str(self._verify.dumps([account_id, email]))

    def reset_token(self, account_id: int, password_hash: str | None) -> str:
        return str(self._reset.dumps([account_id, fingerprint(password_hash)]))

    @staticmethod
    def _load(serializer: URLSafeTimedSerializer, token: object, max_age: int) -> list[object]:
        if not isinstance(token, str) or not 0 < len(token) <= 2000 or not token.isascii():
            raise LinkError()
        try:
            value = serializer.loads(token, max_age=max_age)
        except SignatureExpired:
            raise LinkError(expired=True) from None
        except (BadSignature, ValueError, TypeError):
            raise LinkError() from None
        if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], int) \
                or isinstance(value[0], bool) or not isinstance(value[1], str):
            raise LinkError()
        return value

    def read_verify(self, token: object) -> VerifyClaim:
        account_id, email = self._load(self._verify, token, self.verify_seconds)
        return VerifyClaim(int(account_id), str(email))  # type: ignore[call-overload]

    def read_reset(self, token: object) -> ResetClaim:
        account_id, fp = self._load(self._reset, token, self.reset_seconds)
        return ResetClaim(int(account_id), str(fp))  # type: ignore[call-overload]
