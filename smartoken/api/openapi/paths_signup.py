"""Paths and schemas of sign-up, verification, password reset and invite codes (issue 15;
api/signup.py, api/signup_admin.py, docs/accounts.md)."""

from __future__ import annotations

from smartoken.api.openapi.common import ADMIN, JSON, PUBLIC, json_body, op, path_param, ref
from smartoken.api.openapi.schemas_admin import ID, TIME, TIME_IN, USD, USD_IN

BODY = (400, 413)
_NULL_TIME: JSON = {"oneOf": [TIME, {"type": "null"}]}
_EMAIL: JSON = {"type": "string", "maxLength": 254, "description": "Compared lower-cased"}
_PASSWORD: JSON = {"type": "string", "minLength": 8, "maxLength": 200}
_TOKEN: JSON = {"type": "string", "description": "The token parameter of the mailed link"}
_ACCEPTED: JSON = {"type": "object", "required": ["status", "message"], "properties": {
    "status": {"enum": ["pending_verification", "sent_if_known"]},
    "message": {"type": "string"}}}
_POLICY: JSON = {"enum": ["closed", "invite", "open"]}


def _body(required: list[str], **props: JSON) -> JSON:
    return {"type": "object", "required": required, "additionalProperties": False,
            "properties": props}


SIGNUP_SCHEMAS: JSON = {
    "SignUp": _body(["email", "password"], email=_EMAIL, password=_PASSWORD,
                    invite_code={"type": "string", "maxLength": 100,
                                 "description": "Required under the invite policy"}),
    "EmailOnly": _body(["email"], email=_EMAIL),
    "VerifyEmail": _body(["token"], token=_TOKEN),
    "ResetPassword": _body(["token", "password"], token=_TOKEN, password=_PASSWORD),
    "MailAccepted": _ACCEPTED,
    "Verified": {"type": "object", "required": ["verified", "account_id", "trial_credit_usd"],
                 "properties": {"verified": {"const": True}, "account_id": ID,
                                "trial_credit_usd": USD | {
                                    "description": "Credited by this call (0 after the "
                                                   "first)"}}},
    "PasswordReset": {"type": "object", "required": ["reset"],
                      "properties": {"reset": {"const": True}}},
    "SignupPolicy": {"type": "object", "required": ["policy", "trial_credit_usd"],
                     "properties": {"policy": _POLICY, "trial_credit_usd": USD,
                                    "mail_configured": {"type": "boolean"},
                                    "public_url": {"type": ["string", "null"]}}},
    "SignupPolicyUpdate": _body([], policy=_POLICY, trial_credit_usd=USD_IN),
    "InviteCreate": _body([], count={"type": "integer", "minimum": 1, "maximum": 100,
                                     "default": 1},
                          expires_at=TIME_IN,
                          expires_in={"type": "integer", "minimum": 1,
                                      "description": "Seconds from now"},
                          note={"type": "string", "maxLength": 200}),
    "InvitesCreated": {"type": "object", "required": ["codes"], "properties": {
        "codes": {"type": "array", "items": {"type": "string"},
                  "description": "The codes in full: only in this answer"},
        "expires_at": _NULL_TIME, "note": {"type": "string"}}},
    "InviteList": {"type": "object", "required": ["data"], "properties": {
        "data": {"type": "array", "items": {"type": "object", "properties": {
            "id": ID, "prefix": {"type": "string"},
            "state": {"enum": ["open", "used", "revoked", "expired"]},
            "note": {"type": "string"}, "created_by": {"type": "string"},
            "created_at": TIME, "expires_at": _NULL_TIME, "used_at": _NULL_TIME,
            "used_by": {"type": ["integer", "null"]}, "revoked_at": _NULL_TIME}}}}},
    "InviteRevoked": {"type": "object", "required": ["id", "revoked"],
                      "properties": {"id": ID, "revoked": {"type": "boolean"}}},
}


def signup_paths() -> JSON:
    accepted = json_body(ref("MailAccepted"), "Accepted: the same answer whether or not the "
                                              "address has an account")
    policy = json_body(ref("SignupPolicy"))
    return {
        "/account/signup": {"post": op(
            "signUp", PUBLIC, accepted, (403, 429, *BODY), status=202, body="SignUp",
            summary="Create an account (policy open or invite); a verification link is "
                    "mailed")},
        "/account/signup/resend": {"post": op(
            "resendVerification", PUBLIC, accepted, (429, *BODY), status=202,
            body="EmailOnly")},
        "/account/verify": {"post": op(
            "verifyEmail", PUBLIC, json_body(ref("Verified")), BODY, body="VerifyEmail",
            summary="Confirm the address; the trial credit once")},
        "/account/password/forgot": {"post": op(
            "forgotPassword", PUBLIC, accepted, (429, *BODY), status=202, body="EmailOnly")},
        "/account/password/reset": {"post": op(
            "resetPassword", PUBLIC, json_body(ref("PasswordReset")), BODY,
            body="ResetPassword", summary="Set a new password with a mailed link (once)")},
        "/admin/signup": {
            "get": op("getSignupPolicy", ADMIN, policy, (403,)),
            "patch": op("updateSignupPolicy", ADMIN, policy, (403, *BODY),
                        body="SignupPolicyUpdate"),
            "put": op("replaceSignupPolicy", ADMIN, policy, (403, *BODY),
                      body="SignupPolicyUpdate", summary="Same as PATCH"),
        },
        "/admin/invites": {
            "post": op("createInvites", ADMIN, json_body(ref("InvitesCreated")),
                       (403, *BODY), status=201, body="InviteCreate"),
            "get": op("listInvites", ADMIN, json_body(ref("InviteList")), (403,)),
        },
        "/admin/invites/{invite_id}/revoke": {"post": op(
            "revokeInvite", ADMIN, json_body(ref("InviteRevoked")), (403, 404),
            params=[path_param("invite_id", {"type": "integer"})])},
    }
