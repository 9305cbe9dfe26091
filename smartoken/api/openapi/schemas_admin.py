"""Schemas of the admin and account API: accounts, wallets, wallet transactions, API keys,
usage records and the route table. They follow ``api/admin_input.py`` (what is accepted) and
``api/admin_views.py`` (what is answered). Money is an exact USD string; times are ISO 8601
UTC."""

from __future__ import annotations

from smartoken.api.admin_input import STATUSES
from smartoken.api.admin_ops import KINDS
from smartoken.api.admin_views import USAGE_FIELDS
from smartoken.api.openapi.common import JSON, ref

USD: JSON = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,6})?$",
             "description": "Exact USD amount", "examples": ["12.50"]}
USD_IN: JSON = {"type": ["string", "integer"],
                "description": "Exact USD amount: a string (\"12.50\", at most 6 decimals) or "
                               "an integer; floats are refused"}
TIME: JSON = {"type": "string", "format": "date-time"}
TIME_IN: JSON = {"type": ["string", "number"],
                 "description": "ISO 8601 (UTC when no zone is given) or Unix seconds"}
ID: JSON = {"type": "integer", "minimum": 1}


def _nullable(schema: JSON) -> JSON:
    return {"oneOf": [schema, {"type": "null"}]}


def _obj(required: list[str], props: JSON, closed: bool = False) -> JSON:
    out: JSON = {"type": "object", "required": required, "properties": props}
    if closed:
        out["additionalProperties"] = False
    return out


def _list(item: str, *, paged: bool = False) -> JSON:
    props: JSON = {"object": {"const": "list"}, "data": {"type": "array", "items": ref(item)},
                   "has_more": {"type": "boolean"}}
    if paged:
        props |= {"limit": {"type": "integer"}, "offset": {"type": "integer"}}
    return _obj(["object", "data", "has_more"], props)


WALLET = _obj(["object", "account_id", "balance", "reserved", "available", "currency"], {
    "object": {"const": "wallet"}, "account_id": ID,
    "balance": USD | {"description": "Recorded balance plus settled, unwritten debits"},
    "reserved": USD | {"description": "Held by requests in flight"},
    "available": USD, "recorded_balance": USD, "currency": {"const": "USD"},
    "ledger_sum": USD | {"description": "Sum of the ledger (GET wallet only)"}})
ACCOUNT = _obj(["object", "id", "name", "role", "created_at", "wallet"], {
    "object": {"const": "account"}, "id": ID, "name": {"type": "string"},
    "role": {"enum": ["user", "admin"]}, "created_at": TIME, "wallet": ref("Wallet"),
    "disabled": {"type": "boolean"},
    "key_id": ID | {"description": "The calling key (GET /account only)"}})
KEY_INPUT: JSON = {
    "name": {"type": ["string", "null"], "maxLength": 100},
    "families": {"oneOf": [{"type": "array", "minItems": 1, "items": {"type": "string"}},
                           {"type": "null"}],
                 "description": "Model families the key may use; null for every family"},
    "daily_budget": _nullable(USD_IN), "monthly_budget": _nullable(USD_IN),
    "rpm": {"type": ["integer", "null"], "minimum": 1, "maximum": 10**9},
    "tpm": {"type": ["integer", "null"], "minimum": 1, "maximum": 10**9},
    "expires_at": _nullable(TIME_IN),
    "expires_in": {"type": ["integer", "null"], "minimum": 1, "maximum": 100 * 365 * 86400,
                   "description": "Seconds from now; not together with expires_at"},
}
API_KEY = _obj(["object", "id", "account_id", "prefix", "status", "spend"], {
    "object": {"const": "api_key"}, "id": ID, "account_id": ID, "name": {"type": "string"},
    "prefix": {"type": "string"},
    "families": {"type": ["array", "null"], "items": {"type": "string"}},
    "daily_budget": _nullable(USD), "monthly_budget": _nullable(USD),
    "rpm": {"type": ["integer", "null"]}, "tpm": {"type": ["integer", "null"]},
    "admin": {"type": "boolean", "description": "Created as an admin key"},
    "expires_at": _nullable(TIME), "revoked_at": _nullable(TIME),
    "created_at": TIME, "updated_at": _nullable(TIME),
    "status": {"enum": ["active", "revoked", "expired"]},
    "spend": _obj(["day", "month", "daily", "monthly", "reserved"], {
        "day": {"type": "string"}, "month": {"type": "string"}, "daily": USD,
        "monthly": USD, "reserved": USD})})
TRANSACTION = _obj(["object", "id", "account_id", "kind", "amount", "created_at"], {
    "object": {"const": "wallet.transaction"}, "id": ID, "account_id": ID,
    "kind": {"type": "string", "description": "credit, refund, adjustment, or a debit kind"},
    "amount": USD, "request_id": {"type": ["string", "null"]},
    "actor": {"type": ["string", "null"]}, "reason": {"type": ["string", "null"]},
    "created_at": TIME})
_USAGE_TYPES: JSON = {
    "id": ID, "created_at": TIME, "account_id": ID, "key_id": {"type": ["integer", "null"]},
    "stream": {"type": "boolean"}, "usage_estimated": {"type": "boolean"}, "cost": USD,
    "status": {"enum": sorted(STATUSES)}, "http_status": {"type": ["integer", "null"]}}
USAGE_RECORD = _obj(["object", *USAGE_FIELDS], {
    "object": {"const": "usage.record"},
    **{f: _USAGE_TYPES.get(f, {"type": ["string", "integer", "null"]}) for f in USAGE_FIELDS}})
ROUTE_HEALTH = _obj(["id", "model", "provider", "state"], {
    "id": {"type": "string"}, "model": {"type": "string"}, "provider": {"type": "string"},
    "upstream_model": {"type": "string"}, "priority": {"type": "integer"},
    "weight": {"type": "integer"}, "state": {"type": "string", "description": "Breaker state"},
    "cooldown_remaining_s": {"type": "number"},
    "success_rate": {"type": ["number", "null"]},
    "p50_latency_ms": {"type": ["number", "null"]}, "p50_ttft_ms": {"type": ["number", "null"]},
    "successes": {"type": "integer"}, "failures": {"type": "integer"},
    "last_error": {"type": ["string", "null"]}})

ADMIN_SCHEMAS: JSON = {
    "CatalogDocument": {"type": "object", "description": "smartoken/catalog/document.py",
                        "properties": {s: {"type": "object"} for s in
                                       ("currencies", "windows", "families", "models")}},
    "CatalogImport": _obj(["object", "version", "models", "families"], {
        "object": {"const": "catalog.import"}, "version": {"type": "integer"},
        "models": {"type": "integer"}, "families": {"type": "integer"}}),
    "Wallet": WALLET,
    "Account": ACCOUNT,
    "AccountList": _list("Account"),
    "AccountCreate": _obj(["name"], {
        "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.@+-]{1,100}$"},
        "role": {"enum": ["user", "admin"], "default": "user"},
        "password": {"type": ["string", "null"], "minLength": 8, "maxLength": 200,
                     "writeOnly": True, "description": "For the console sign-in"},
        "credit": _nullable(USD_IN) | {"description": "Opening credit"}}, closed=True),
    "AccountPatch": _obj([], {"role": {"enum": ["user", "admin"]}, "disabled": {
        "type": "boolean", "description": "A disabled account's keys answer 401 "
        "account_disabled and its console sessions end"}}, closed=True),
    "Transaction": TRANSACTION,
    "TransactionPosted": {"allOf": [ref("Transaction"), _obj(["wallet"], {
        "wallet": ref("Wallet")})]},
    "TransactionCreate": _obj(["amount", "reason"], {
        "kind": {"enum": sorted(KINDS), "default": "credit"},
        "amount": USD_IN | {"description": "Not zero; negative only for an adjustment, which "
                                           "may not take the wallet below zero"},
        "reason": {"type": "string", "minLength": 1, "maxLength": 500}}, closed=True),
    "TransactionPage": _list("Transaction", paged=True),
    "ApiKey": API_KEY,
    "ApiKeyCreated": {"allOf": [ref("ApiKey"), _obj(["key"], {"key": {
        "type": "string", "description": "The secret, shown this once"}})]},
    "ApiKeyList": _list("ApiKey"),
    "KeyCreate": _obj([], KEY_INPUT, closed=True),
    "AdminKeyCreate": _obj(["account_id"], {"account_id": ID, **KEY_INPUT, "admin": {
        "type": "boolean", "description": "An admin key: only for an admin account, never "
        "with a restriction (families, budgets, rpm, tpm, expiry)"}}, closed=True),
    "KeyPatch": _obj([], KEY_INPUT, closed=True),
    "UsageRecord": USAGE_RECORD,
    "UsagePage": {"allOf": [_list("UsageRecord", paged=True), _obj(["totals"], {
        "totals": _obj(["requests", "prompt_tokens", "completion_tokens", "cost"], {
            "requests": {"type": "integer"}, "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"}, "cost": USD})})]},
    "RouteTable": _obj(["object", "generated_at", "data"], {
        "object": {"const": "list"}, "generated_at": {"type": "integer"},
        "data": {"type": "array", "items": ref("RouteHealth")}}),
    "RouteHealth": ROUTE_HEALTH,
}
