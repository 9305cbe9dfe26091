"""Paths for operators (/admin: accounts, wallets, keys, usage, stored providers, the route
table) and for any key on its own account (/account).

Admin operations need the master key or an admin account's key (401 without a valid
credential, 403 for another account's key). On /account, changing keys needs an unrestricted
key (403 restricted_key); another account's key id is a 404.
"""

from __future__ import annotations

from smartoken.api.admin_input import MAX_EXPORT, MAX_PAGE, STATUSES
from smartoken.api.openapi.common import (
    ADMIN,
    JSON,
    KEY,
    json_body,
    op,
    path_param,
    query_param,
    ref,
)
from smartoken.api.openapi.schemas import NAME

ACCOUNT_ID = [path_param("account_id", {"type": "integer"})]
KEY_ID = [path_param("key_id", {"type": "integer"})]
PROVIDER = [path_param("name", NAME)]
ID_QUERY = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
BODY = (400, 413)  # a JSON body: malformed, unknown or bad fields; or too large
TIME_QUERY = {"type": "string", "description": "ISO 8601 or Unix seconds"}


def page_params(max_rows: int, default: int) -> list[JSON]:
    return [query_param("limit", {"type": "integer", "minimum": 1, "maximum": max_rows,
                                  "default": default}, "Page size"),
            query_param("offset", {"type": "integer", "minimum": 0, "maximum": 10**9,
                                   "default": 0}, "Rows to skip")]


def usage_params(export: bool) -> list[JSON]:
    rows = MAX_EXPORT if export else MAX_PAGE
    return [
        query_param("account_id", ID_QUERY,
                    "Only this account (on /account: must be the key's own, or absent)"),
        query_param("key_id", ID_QUERY, "Only this key"),
        query_param("model", {"type": "string"}, "Only this model"),
        query_param("status", {"enum": sorted(STATUSES)}, "Only this outcome"),
        query_param("since", TIME_QUERY, "From this time"),
        query_param("until", TIME_QUERY, "Up to this time"),
        *page_params(rows, rows if export else 100)]


CSV = {"description": "Usage records as CSV (a header row, then one row per record)",
       "content": {"text/csv": {"schema": {"type": "string"}}}}


def key_paths(prefix: str, sec: list[JSON], scoped: bool) -> JSON:
    """/admin/keys/{key_id}… or /account/keys/{key_id}…: the same operations."""
    name = "Admin" if not scoped else "Account"
    manage = (403, 404)  # admin_required, or (on /account) restricted_key
    view = (404,) if scoped else (403, 404)
    key = json_body(ref("ApiKey"))
    return {
        f"{prefix}/{{key_id}}": {
            "get": op(f"get{name}Key", sec, key, view, params=KEY_ID),
            "patch": op(f"update{name}Key", sec, key, (*manage, *BODY), params=KEY_ID,
                        body="KeyPatch"),
            "delete": op(f"delete{name}Key", sec, key, manage, params=KEY_ID,
                         summary="Revoke the key (it stays listed, status revoked)"),
        },
        f"{prefix}/{{key_id}}/revoke": {"post": op(
            f"revoke{name}Key", sec, key, manage, params=KEY_ID,
            summary="Revoke the key; same as DELETE")},
    }


def admin_paths() -> JSON:
    acct = "/admin/accounts/{account_id}"
    return {
        "/admin/accounts": {
            "get": op("listAccounts", ADMIN, json_body(ref("AccountList")), (403,)),
            "post": op("createAccount", ADMIN, json_body(ref("Account"), "Created"),
                       (403, 409, *BODY), status=201, body="AccountCreate"),
        },
        acct: {
            "get": op("getAccount", ADMIN, json_body(ref("Account")), (403, 404),
                      params=ACCOUNT_ID),
            "patch": op("updateAccount", ADMIN, json_body(ref("Account")),
                        (403, 404, *BODY), params=ACCOUNT_ID, body="AccountPatch"),
        },
        acct + "/wallet": {"get": op("getAccountWallet", ADMIN, json_body(ref("Wallet")),
                                     (403, 404), params=ACCOUNT_ID)},
        acct + "/wallet/transactions": {
            "get": op("listAccountTransactions", ADMIN, json_body(ref("TransactionPage")),
                      (400, 403, 404), params=ACCOUNT_ID + page_params(MAX_PAGE, 100)),
            "post": op("postTransaction", ADMIN, json_body(ref("TransactionPosted"),
                                                           "Created"),
                       (403, 404, *BODY), status=201, params=ACCOUNT_ID,
                       body="TransactionCreate",
                       summary="Credit, refund or adjust a wallet (kept in the ledger)"),
        },
        "/admin/keys": {
            "get": op("listKeys", ADMIN, json_body(ref("ApiKeyList")), (400, 403), params=[
                query_param("account_id", ID_QUERY, "Only this account's keys")]),
            "post": op("createKey", ADMIN, json_body(ref("ApiKeyCreated"), "Created"),
                       (403, 404, *BODY), status=201, body="AdminKeyCreate"),
        },
        **key_paths("/admin/keys", ADMIN, scoped=False),
        "/admin/usage": {"get": op("listUsage", ADMIN, json_body(ref("UsagePage")),
                                   (400, 403), params=usage_params(False))},
        "/admin/usage.csv": {"get": op("exportUsage", ADMIN, CSV, (400, 403),
                                       params=usage_params(True))},
        "/admin/routes": {"get": op("listRoutes", ADMIN, json_body(ref("RouteTable")), (403,),
                                    summary="Every route with its breaker state and health "
                                            "(per process)")},
        **provider_paths(),
        "/admin/catalog": {
            "get": op("exportCatalog", ADMIN, json_body(ref("CatalogDocument")), (403,),
                      summary="The catalog in force: the built-in document with the latest "
                              "import laid over it (format=yaml for YAML)",
                      params=[query_param("format", {"enum": ["json", "yaml"]}, "Output")]),
            "put": op("importCatalog", ADMIN, json_body(ref("CatalogImport")), (403, *BODY),
                      summary="Import a catalog document (replaces the previous import, or is "
                              "laid over it with merge=true)", body="CatalogDocument",
                      params=[query_param("merge", {"enum": ["true", "false"]},
                                          "Lay over the previous import")]),
        },
    }


def provider_paths() -> JSON:
    # 503 secret_key_missing: stored providers need SMARTOKEN_SECRET_KEY.
    return {
        "/admin/providers": {
            "get": op("listProviders", ADMIN, json_body(ref("ProviderList")), (403, 503)),
            "post": op("createProvider", ADMIN, json_body(ref("Provider"), "Created"),
                       (403, 409, 503, *BODY), status=201, body="ProviderCreate"),
        },
        "/admin/providers/{name}": {
            "get": op("getProvider", ADMIN, json_body(ref("Provider")), (403, 404, 409, 503),
                      params=PROVIDER),
            "patch": op("updateProvider", ADMIN, json_body(ref("Provider")),
                        (403, 404, 409, 503, *BODY), params=PROVIDER, body="ProviderPatch"),
            "delete": op("deleteProvider", ADMIN, json_body(ref("ProviderDeleted")),
                         (403, 404, 409, 503), params=PROVIDER),
        },
        "/admin/audit": {
            "get": op("listAudit", ADMIN, json_body(ref("AuditList")), (400, 403), params=[
                query_param("target", {"type": "string", "maxLength": 200},
                            "provider:<name> or catalog"), *page_params(500, 50)]),
        },
        "/admin/providers/{name}/health": {
            "get": op("getProviderHealth", ADMIN, json_body(ref("ProviderHealth")), (403, 404),
                      params=PROVIDER),
        },
        "/admin/providers/{name}/test": {
            "post": op("testProvider", ADMIN, json_body(ref("ProviderTestResult")),
                       (403, 404, *BODY), params=PROVIDER, body="ProviderTestRequest"),
        },
    }


def account_paths() -> JSON:
    # 404 on the account itself: only if it was deleted while its key is cached.
    return {
        "/account": {"get": op("getOwnAccount", KEY, json_body(ref("Account")), (404,))},
        "/account/keys": {
            "get": op("listOwnKeys", KEY, json_body(ref("ApiKeyList")), ()),
            "post": op("createOwnKey", KEY, json_body(ref("ApiKeyCreated"), "Created"),
                       (403, *BODY), status=201, body="KeyCreate"),
        },
        **key_paths("/account/keys", KEY, scoped=True),
        "/account/wallet": {"get": op("getOwnWallet", KEY, json_body(ref("Wallet")), (404,))},
        "/account/wallet/transactions": {"get": op(
            "listOwnTransactions", KEY, json_body(ref("TransactionPage")), (400, 404),
            params=page_params(MAX_PAGE, 100))},
        "/account/usage": {"get": op("listOwnUsage", KEY, json_body(ref("UsagePage")), (400,),
                                     params=usage_params(False))},
        "/account/usage.csv": {"get": op("exportOwnUsage", KEY, CSV, (400,),
                                         params=usage_params(True))},
    }
