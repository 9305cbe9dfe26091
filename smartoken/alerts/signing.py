"""Webhook signatures, as Stripe signs its events: ``X-SmarToken-Signature: t=<unix>,v1=<hex>``
where ``v1`` is HMAC-SHA256 over ``"<t>.<raw body>"`` keyed by the account's webhook secret.
A receiver recomputes it over the exact bytes it got and refuses an old ``t`` (replays).

The secret is shown once when made; it is kept sealed with ``SMARTOKEN_SECRET_KEY`` when that
is set (``fernet:``), else as it is (``plain:``): the gateway must read it back to sign."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from smartoken.auth.secretbox import SecretBox

HEADER = "X-SmarToken-Signature"
PREFIX = "whsec_"
TOLERANCE = 300  # seconds a receiver should accept between t and its own clock


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes, t: int | None = None) -> str:
    """The header value for ``body`` sent at ``t`` (now by default)."""
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, now: float | None = None,
           tolerance: int = TOLERANCE) -> bool:
    """What a receiver does: parse ``t`` and every ``v1``, compare in constant time, and
    refuse a timestamp further than ``tolerance`` seconds from ``now``."""
    t: int | None = None
    sigs: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) < 12:
            t = int(value)
        elif name == "v1":
            sigs.append(value)
    if t is None or not sigs:
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = signature(secret, body, t).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, s) for s in sigs)


def seal(secret: str, box: SecretBox | None) -> str:
    return f"fernet:{box.encrypt(secret)}" if box is not None else f"plain:{secret}"


def unseal(stored: str, box: SecretBox | None) -> str | None:
    """The secret, or None when it was sealed under a key this process does not have."""
    kind, _, value = stored.partition(":")
    if kind == "plain":
        return value
    if kind == "fernet" and box is not None:
        try:
            return box.decrypt(value, "an alert webhook secret")
        except ValueError:
            return None
    return None
