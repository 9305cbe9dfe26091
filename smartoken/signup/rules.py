"""What a visitor may type: an email address, a password, an invite code."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata

MIN_PASSWORD, MAX_PASSWORD = 8, 200  # as the admin pages and API (console/admin_account.py)
MAX_EMAIL = 254
# Printable, no spaces, quotes, brackets or commas: one plain mailbox, nothing a header or a
# parser could read as two.
_LOCAL = re.compile(r"[^\s\"(),:;<>@\[\\\]]{1,64}")
_LABEL = re.compile(r"(?!-)[^\s\"(),:;<>@\[\\\]._]{1,63}(?<!-)")
INVITE_PREFIX = "inv-"


class RuleError(ValueError):
    """``code`` names the field's problem: invalid_email, weak_password, invalid_invite."""

    def __init__(self, message: str, code: str, param: str) -> None:
        super().__init__(message)
        self.message, self.code, self.param = message, code, param


def _clean_text(value: object, param: str, code: str, what: str) -> str:
    if not isinstance(value, str):
        raise RuleError(f"'{param}' must be a string.", code, param)
    if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise RuleError(f"The {what} contains characters that cannot be stored.", code, param)
    return value


def normalize_email(value: object) -> str:
    """The address as stored and compared: trimmed, NFC, lower-cased (unique whatever the
    case the visitor typed). Raises ``RuleError``."""
    text = unicodedata.normalize("NFC", _clean_text(value, "email", "invalid_email",
                                                    "email address")).strip().lower()
    local, at, domain = text.rpartition("@")
    ok = (at and len(text) <= MAX_EMAIL and _LOCAL.fullmatch(local) is not None
          and not local.startswith(".") and not local.endswith(".") and ".." not in local
          and "." in domain and all(_LABEL.fullmatch(p) for p in domain.split("."))
          and all(unicodedata.category(c)[0] != "C" for c in text))
    if not ok:
        raise RuleError("Enter a valid email address, such as name@example.com.",
                        "invalid_email", "email")
    return text


def check_password(value: object) -> str:
    password = _clean_text(value, "password", "weak_password", "password")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise RuleError(f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.",
                        "weak_password", "password")
    return password


def new_invite_code() -> str:
    return INVITE_PREFIX + secrets.token_urlsafe(15)


def invite_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8", "replace")).hexdigest()


def invite_prefix(code: str) -> str:
    return code[: len(INVITE_PREFIX) + 4]


def check_invite(value: object) -> str:
    code = _clean_text(value, "invite_code", "invalid_invite", "invite code").strip()
    if not code or len(code) > 100:
        raise RuleError("Enter the invite code you were given.", "invalid_invite",
                        "invite_code")
    return code
