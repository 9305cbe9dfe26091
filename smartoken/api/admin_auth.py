"""Who may call the admin and account API.

Admin endpoints accept the master key (``SMARTOKEN_MASTER_KEY``, compared in constant time) or
an admin key: one created as an admin key (``admin: true``, ``keys create --admin``), of an
account with the admin role, with no restriction (``KeyContext.is_admin``). A key its owner
limited by families, budgets, rate limits or expiry is never an admin, whatever its account.
Account endpoints accept any valid key and act on that key's account only; creating, changing
or revoking keys there needs an unrestricted key, so that a scoped key handed to a script
cannot mint itself a wider one.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request

from smartoken.api.http import app_state, authenticate
from smartoken.auth.keys import KeyContext
from smartoken.errors import AuthenticationFailed, PermissionDenied


@dataclass(frozen=True, slots=True)
class Admin:
    actor: str  # recorded on wallet transactions
    key: KeyContext | None  # None for the master key


def _bearer(request: Request) -> str:
    scheme, _, secret = (request.headers.get("authorization") or "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


async def require_admin(request: Request) -> Admin:
    master = app_state(request).settings.master_key
    secret = _bearer(request)
    if master and secret and hmac.compare_digest(secret.encode("utf-8", "surrogatepass"),
                                                 master.encode()):
        return Admin("master-key", None)
    try:
        key = await authenticate(request)
    except AuthenticationFailed as exc:
        exc.message = "Admin endpoints need the master key or an admin account's API key. " \
            + exc.message
        raise
    if not key.is_admin:
        raise PermissionDenied("This endpoint needs an admin credential: the master key or an "
                               "unrestricted key created as an admin key of an admin account.",
                               code="admin_required")
    return Admin(f"{key.account_name} (key {key.prefix}…)", key)


async def require_account(request: Request) -> KeyContext:
    return await authenticate(request)


async def require_key_manager(request: Request) -> KeyContext:
    key = await authenticate(request)
    if key.restricted:
        raise PermissionDenied("This key is restricted (families, budgets, limits or expiry); "
                               "only an unrestricted key of the account may manage keys.",
                               code="restricted_key")
    return key
