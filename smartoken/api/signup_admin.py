"""The admin API of sign-up (docs/accounts.md): the policy and trial credit, invite codes.

    GET   /admin/signup                  {"policy", "trial_credit_usd", "mail_configured", ...}
    PATCH /admin/signup                  {"policy"?, "trial_credit_usd"?}
    POST  /admin/invites                 {"count"?: 1-100, "expires_at"? | "expires_in"?, "note"?}
    GET   /admin/invites                 {"data": [{id, prefix, state, note, ...}]}
    POST  /admin/invites/{id}/revoke     {"revoked": true|false}

Codes are in the answer to POST only (the database keeps their SHA-256).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from smartoken.api import admin_common as common
from smartoken.api import admin_input as inp
from smartoken.api.admin_auth import require_admin
from smartoken.api.admin_views import iso
from smartoken.api.http import JSONResponse, app_state
from smartoken.api.signup import signup_of
from smartoken.config import SIGNUP_POLICIES
from smartoken.errors import InvalidRequest
from smartoken.money import format_usd
from smartoken.signup.rules import invite_hash, invite_prefix, new_invite_code
from smartoken.store import repo, signup_repo

MAX_BATCH = 100
MAX_TRIAL = 10_000 * 1_000_000


async def _view(request: Request) -> dict[str, Any]:
    policy = await signup_of(request).policy()
    settings = app_state(request).settings
    return {"policy": policy.mode, "trial_credit_usd": format_usd(policy.trial_micro),
            "mail_configured": settings.smtp is not None,
            "public_url": settings.public_url or None}


async def get_policy(request: Request) -> JSONResponse:
    await require_admin(request)
    return JSONResponse(await _view(request))


async def set_policy(request: Request) -> JSONResponse:
    await require_admin(request)
    data = await common.read_json(request, ("policy", "trial_credit_usd"))
    current = await signup_of(request).policy()
    mode = data.get("policy", current.mode)
    if mode not in SIGNUP_POLICIES:
        raise InvalidRequest(f"'policy' must be one of {', '.join(SIGNUP_POLICIES)}.",
                             param="policy", code="invalid_value")
    trial = current.trial_micro
    if data.get("trial_credit_usd") is not None:
        trial = inp.usd(data["trial_credit_usd"], "trial_credit_usd")
        if not 0 <= trial <= MAX_TRIAL:
            raise InvalidRequest("'trial_credit_usd' must be in 0..10000.",
                                 param="trial_credit_usd", code="invalid_value")
    await signup_of(request).set_policy(str(mode), trial)
    return JSONResponse(await _view(request))


async def create_invites(request: Request) -> JSONResponse:
    admin = await require_admin(request)
    data = await common.read_json(request, ("count", "expires_at", "expires_in", "note"))
    count = data.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BATCH:
        raise InvalidRequest("'count' must be an integer in 1..100.", param="count",
                             code="invalid_value")
    _, expires = inp.expiry(data)
    if expires is not None and expires <= repo.now():
        raise InvalidRequest("'expires_at' is in the past.", param="expires_at",
                             code="invalid_value")
    note = inp.text(data, "note", 200)
    codes = [new_invite_code() for _ in range(count)]
    await signup_repo.add_invites(app_state(request).engine,
                                  [(invite_hash(c), invite_prefix(c)) for c in codes],
                                  admin.actor[:100], expires, note)
    return JSONResponse({"codes": codes, "expires_at": iso(expires), "note": note},
                        status_code=201)


async def list_invites(request: Request) -> JSONResponse:
    await require_admin(request)
    now = repo.now()
    rows = await signup_repo.list_invites(app_state(request).engine)
    return JSONResponse({"data": [
        {"id": r["id"], "prefix": r["prefix"], "state": signup_repo.invite_state(r, now),
         "note": r["note"], "created_by": r["created_by"], "created_at": iso(r["created_at"]),
         "expires_at": iso(r["expires_at"]), "used_at": iso(r["used_at"]),
         "used_by": r["used_by"], "revoked_at": iso(r["revoked_at"])} for r in rows]})


async def revoke_invite(request: Request) -> JSONResponse:
    await require_admin(request)
    invite_id = inp.row_id(int(request.path_params["invite_id"]), "invite code", "invite_id")
    done = await signup_repo.revoke_invite(app_state(request).engine, invite_id)
    return JSONResponse({"id": invite_id, "revoked": done})


def signup_admin_routes() -> list[Route]:
    return [
        Route("/admin/signup", get_policy, methods=["GET"]),
        Route("/admin/signup", set_policy, methods=["PATCH", "PUT"]),
        Route("/admin/invites", create_invites, methods=["POST"]),
        Route("/admin/invites", list_invites, methods=["GET"]),
        Route("/admin/invites/{invite_id:int}/revoke", revoke_invite, methods=["POST"]),
    ]
