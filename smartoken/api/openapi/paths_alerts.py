"""Paths and schemas of alert settings and history (issue 15; api/alerts.py, docs/alerts.md)."""

from __future__ import annotations

from smartoken.api.openapi.common import JSON, KEY, json_body, op, query_param, ref
from smartoken.api.openapi.schemas_admin import ID, TIME, USD, USD_IN

BODY = (400, 413)
_NULL_STR: JSON = {"type": ["string", "null"]}
_NULL_TIME: JSON = {"oneOf": [TIME, {"type": "null"}]}
_PERCENTS: JSON = {"type": "array", "maxItems": 5,
                   "items": {"type": "integer", "minimum": 1, "maximum": 100},
                   "description": "Percent of each key's daily and monthly budget"}
_STATE: JSON = {"type": ["string", "null"]}

ALERT_SCHEMAS: JSON = {
    "AlertSettings": {"type": "object", "required": [
        "object", "account_id", "low_balance_threshold", "key_budget_percents", "email_enabled",
        "webhook_url", "webhook_secret_set", "signature_header"], "properties": {
        "object": {"const": "alert_settings"}, "account_id": ID,
        "low_balance_threshold": {"oneOf": [USD, {"type": "null"}],
                                  "description": "Fires once when the balance falls below; "
                                                 "re-armed at or above it"},
        "key_budget_percents": _PERCENTS,
        "email": _NULL_STR, "email_enabled": {"type": "boolean"},
        "email_recipient": {"type": ["string", "null"],
                            "description": "Where mails go: email, else the account's "
                                           "verified address"},
        "webhook_url": _NULL_STR, "webhook_secret_set": {"type": "boolean"},
        "signature_header": {"type": "string"},
        "webhook_secret": {"type": "string",
                           "description": "The signing secret, only in the answer that "
                                          "made it"}}},
    "AlertSettingsUpdate": {"type": "object", "additionalProperties": False, "properties": {
        "low_balance_threshold": {"oneOf": [USD_IN, {"type": "null"}]},
        "key_budget_percents": _PERCENTS,
        "email": {"type": ["string", "null"], "maxLength": 320},
        "email_enabled": {"type": "boolean"},
        "webhook_url": {"type": ["string", "null"], "maxLength": 2000}}},
    "AlertEvent": {"type": "object", "required": ["id", "object", "type", "created",
                                                  "account_id", "data"], "properties": {
        "id": {"type": "string"}, "object": {"const": "event"}, "type": {"type": "string"},
        "created": {"type": "integer"}, "account_id": ID,
        "data": {"type": "object", "description": "threshold and balance (low balance); "
                                                  "key, period, percent, budget and spent "
                                                  "(key budget)"},
        "created_at": TIME, "delivered_at": _NULL_TIME, "email_state": _STATE,
        "webhook_state": _STATE, "webhook": _NULL_STR, "attempts": {"type": "integer"},
        "done": {"type": "boolean"}, "last_error": _NULL_STR}},
    "AlertEventList": {"type": "object", "required": ["data"], "properties": {
        "data": {"type": "array", "items": ref("AlertEvent")}}},
}


def alert_paths() -> JSON:
    settings = json_body(ref("AlertSettings"))
    page = [query_param("limit", {"type": "integer", "minimum": 1}, "Page size"),
            query_param("offset", {"type": "integer", "minimum": 0}, "Rows to skip")]
    return {
        "/account/alerts": {
            "get": op("getAlertSettings", KEY, settings, (),
                      summary="This account's alert settings (any key of the account)"),
            "patch": op("updateAlertSettings", KEY, settings, (403, *BODY),
                        body="AlertSettingsUpdate",
                        summary="Change thresholds, mail and webhook (an unrestricted key); "
                                "a new webhook URL makes a signing secret, shown once"),
        },
        "/account/alerts/webhook-secret": {"post": op(
            "rotateAlertWebhookSecret", KEY, settings, (403,),
            summary="A new webhook signing secret, shown once; the old one stops working")},
        "/account/alerts/events": {"get": op(
            "listAlertEvents", KEY, json_body(ref("AlertEventList")), (400,), params=page,
            summary="Alerts fired for this account, newest first, with their delivery")},
    }
