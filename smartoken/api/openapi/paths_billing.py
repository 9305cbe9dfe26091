"""Paths and schemas of redemption codes and monthly statements (issue 15; api/codes.py)."""

from __future__ import annotations

from smartoken.api.admin_input import MAX_PAGE
from smartoken.api.openapi.common import ADMIN, JSON, KEY, json_body, op, path_param, ref
from smartoken.api.openapi.common import query_param as query
from smartoken.api.openapi.schemas_admin import ID, TIME, TIME_IN, USD, USD_IN

CODE_ID = [path_param("code_id", {"type": "integer"})]
MONTH = path_param("month", {"type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$"},
                   "Calendar month YYYY-MM in the gateway's time zone")
ACCOUNT_ID = path_param("account_id", {"type": "integer"})
CSV = {"description": "The statement as CSV: section, date, item, detail, count, amount_usd, "
                      "prompt_tokens, completion_tokens",
       "content": {"text/csv": {"schema": {"type": "string"}}}}
BODY = (400, 413)
_NULL_TIME: JSON = {"oneOf": [TIME, {"type": "null"}]}

CODE: JSON = {"type": "object", "required": ["object", "id", "batch", "hint", "amount",
                                              "status"], "properties": {
    "object": {"const": "redemption_code"}, "id": ID, "batch": {"type": "string"},
    "hint": {"type": "string", "description": "The code's last 4 characters"},
    "amount": USD, "status": {"enum": ["active", "redeemed", "revoked", "expired"]},
    "expires_at": _NULL_TIME, "created_at": TIME, "created_by": {"type": "string"},
    "revoked_at": _NULL_TIME, "redeemed_at": _NULL_TIME,
    "redeemed_by": {"type": ["integer", "null"]},
    "transaction_id": {"type": ["integer", "null"]},
    "code": {"type": "string", "description": "The code in full: only in the answer that "
                                              "created it"}}}
BILLING_SCHEMAS: JSON = {
    "RedemptionCode": CODE,
    "RedemptionCodeList": {"type": "object", "required": ["object", "data", "has_more"],
                           "properties": {"object": {"const": "list"},
                                          "data": {"type": "array",
                                                   "items": ref("RedemptionCode")},
                                          "has_more": {"type": "boolean"},
                                          "limit": {"type": "integer"},
                                          "offset": {"type": "integer"}}},
    "RedemptionCodeCreate": {"type": "object", "required": ["count", "amount"],
                             "additionalProperties": False, "properties": {
        "count": {"type": "integer", "minimum": 1, "maximum": 1000},
        "amount": USD_IN | {"description": "Each code's worth (at most $100,000)"},
        "batch": {"type": "string", "maxLength": 100, "description": "A label"},
        "expires_at": TIME_IN,
        "expires_in": {"type": "integer", "minimum": 1, "description": "Seconds from now"}}},
    "RedemptionBatchRevoke": {"type": "object", "required": ["batch"],
                              "additionalProperties": False,
                              "properties": {"batch": {"type": "string", "maxLength": 100}}},
    "RedemptionBatchRevoked": {"type": "object", "required": ["object", "batch", "revoked"],
                               "properties": {"object": {"const": "revocation"},
                                              "batch": {"type": "string"},
                                              "revoked": {"type": "integer"}}},
    "Redeem": {"type": "object", "required": ["code"], "additionalProperties": False,
               "properties": {"code": {"type": "string", "description": "Case, spaces and "
                                       "hyphens do not matter"}}},
    "Redemption": {"type": "object", "required": ["object", "amount", "balance"],
                   "properties": {"object": {"const": "redemption"}, "code_id": ID,
                                  "amount": USD, "transaction_id": ID, "balance": USD}},
    "Statement": {"type": "object", "required": ["object", "month", "opening_balance",
                                                 "closing_balance", "lines", "models"],
                  "properties": {
        "object": {"const": "statement"}, "account_id": ID, "account": {"type": "string"},
        "month": {"type": "string"}, "timezone": {"type": "string"},
        "period_start": TIME, "period_end": TIME, "currency": {"const": "USD"},
        "opening_balance": USD, "closing_balance": USD,
        "lines": {"type": "array", "items": {"type": "object", "properties": {
            "line": {"enum": ["credit_topup", "credit_code", "credit_trial", "credit_admin",
                              "usage", "refund", "adjustment"]},
            "transactions": {"type": "integer"}, "amount": USD}}},
        "models": {"type": "array", "items": {"type": "object", "properties": {
            "model": {"type": "string"}, "requests": {"type": "integer"},
            "prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"},
            "cost": USD}}}}},
}


def billing_paths() -> JSON:
    code = "/admin/redemption-codes/{code_id}"
    one = json_body(ref("RedemptionCode"))
    stmt = "/admin/accounts/{account_id}/statements/{month}"
    return {
        "/admin/redemption-codes": {
            "post": op("createRedemptionCodes", ADMIN,
                       json_body(ref("RedemptionCodeList"), "Created: the codes in full, "
                                 "this once"), (403, *BODY), status=201,
                       body="RedemptionCodeCreate",
                       summary="Generate a batch of single-use codes"),
            "get": op("listRedemptionCodes", ADMIN, json_body(ref("RedemptionCodeList")),
                      (400, 403), params=[
                          query("batch", {"type": "string"}, "Only this batch"),
                          query("limit", {"type": "integer", "minimum": 1,
                                          "maximum": MAX_PAGE, "default": 100}, "Page size"),
                          query("offset", {"type": "integer", "minimum": 0, "default": 0},
                                "Rows to skip")]),
        },
        "/admin/redemption-codes/revoke": {"post": op(
            "revokeRedemptionBatch", ADMIN, json_body(ref("RedemptionBatchRevoked")),
            (403, *BODY), body="RedemptionBatchRevoke",
            summary="Revoke every unredeemed code of a batch")},
        code: {
            "get": op("getRedemptionCode", ADMIN, one, (403, 404), params=CODE_ID),
            "delete": op("deleteRedemptionCode", ADMIN, one, (403, 404), params=CODE_ID,
                         summary="Revoke the code (a redeemed code stays redeemed)"),
        },
        code + "/revoke": {"post": op("revokeRedemptionCode", ADMIN, one, (403, 404),
                                      params=CODE_ID, summary="Same as DELETE")},
        stmt: {"get": op("getAccountStatement", ADMIN, json_body(ref("Statement")),
                         (400, 403, 404), params=[ACCOUNT_ID, MONTH])},
        stmt + ".csv": {"get": op("exportAccountStatement", ADMIN, CSV, (400, 403, 404),
                                  params=[ACCOUNT_ID, MONTH])},
        "/account/redeem": {"post": op(
            "redeemCode", KEY, json_body(ref("Redemption")), (429, *BODY), body="Redeem",
            summary="Redeem a code into this account's wallet (one answer, 400 invalid_code, "
                    "for unknown, used, revoked and expired codes; 429 after too many "
                    "failures)")},
        "/account/statements/{month}": {"get": op(
            "getOwnStatement", KEY, json_body(ref("Statement")), (400, 404), params=[MONTH],
            summary="This account's statement for a month")},
        "/account/statements/{month}.csv": {"get": op(
            "exportOwnStatement", KEY, CSV, (400, 404), params=[MONTH])},
    }
