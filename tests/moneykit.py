"""Helpers for the money tests: the admin API over HTTP, worst-case costs, ledger checks."""

from __future__ import annotations

from typing import Any

import httpx

from smartoken import tokens
from smartoken.catalog.builtin import builtin_catalog
from smartoken.relay.pipeline import (
    PROMPT_HEADROOM_ADD,
    PROMPT_HEADROOM_DEN,
    PROMPT_HEADROOM_NUM,
)
from tests.harness import Gateway

MASTER = "mk-test-master-key-0123456789abcdef"
CATALOG = builtin_catalog()
MESSAGES = [{"role": "user", "content": "What does a budget guarantee?"}]
MAX_TOKENS = 100


def reserved_prompt(messages: list[dict[str, Any]] = MESSAGES) -> int:
    prompt = tokens.count_messages(messages, None)
    return prompt * PROMPT_HEADROOM_NUM // PROMPT_HEADROOM_DEN + PROMPT_HEADROOM_ADD


def worst_case(model: str = "kimi-k2", max_tokens: int = MAX_TOKENS,
               messages: list[dict[str, Any]] = MESSAGES) -> int:
    """What the gateway reserves for one request with these messages and max_tokens."""
    return CATALOG.models[model].price.cost(reserved_prompt(messages), max_tokens)


def exact_usage(max_tokens: int = MAX_TOKENS) -> dict[str, int]:
    """Upstream usage whose cost equals the worst case: every request spends all it reserved."""
    return {"prompt_tokens": reserved_prompt(), "completion_tokens": max_tokens}


def usd(micro: int) -> str:
    whole, frac = divmod(micro, 1_000_000)
    return f"{whole}.{frac:06d}"


def micro(value: str) -> int:
    sign = -1 if value.startswith("-") else 1
    whole, _, frac = value.lstrip("-").partition(".")
    return sign * (int(whole) * 1_000_000 + int((frac + "000000")[:6]))


class AdminAPI:
    """The admin (or account) API of a live gateway, authenticated with ``token``."""

    def __init__(self, gw: Gateway, token: str = MASTER) -> None:
        self.gw = gw
        self.token = token

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.request(method, self.gw.base_url + path, headers=headers, timeout=30,
                             **kw)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json=body, **kw)

    def patch(self, path: str, body: Any) -> httpx.Response:
        return self.request("PATCH", path, json=body)

    def ok(self, r: httpx.Response, status: int = 200) -> Any:
        assert r.status_code == status, (r.status_code, r.text)
        return r.json()

    # shortcuts
    def account(self, name: str, credit: str | None = None, role: str = "user") -> int:
        body: dict[str, Any] = {"name": name, "role": role}
        if credit is not None:
            body["credit"] = credit
        return int(self.ok(self.post("/admin/accounts", body), 201)["id"])

    def key(self, account_id: int, **fields: Any) -> tuple[str, int]:
        out = self.ok(self.post("/admin/keys", {"account_id": account_id, **fields}), 201)
        return out["key"], int(out["id"])

    def credit(self, account_id: int, amount: str, kind: str = "credit",
               reason: str = "test") -> Any:
        return self.ok(self.post(f"/admin/accounts/{account_id}/wallet/transactions",
                                 {"kind": kind, "amount": amount, "reason": reason}), 201)


def _snapshot(gw: Gateway, account_id: int) -> dict[str, int]:
    """The wallet's figures in one statement, so one snapshot: a replica's batch (records
    with their debits, one transaction) committing between separate reads would look like
    a record with no debit."""
    [s] = gw.sql(
        "SELECT (SELECT balance_micro FROM wallets WHERE account_id = :a) AS w, "
        "(SELECT COALESCE(SUM(amount_micro), 0) FROM wallet_transactions"
        " WHERE account_id = :a) AS t, "
        "(SELECT COALESCE(SUM(amount_micro), 0) FROM wallet_transactions"
        " WHERE account_id = :a AND kind != 'debit') AS c, "
        "(SELECT COALESCE(SUM(amount_micro), 0) FROM wallet_transactions"
        " WHERE account_id = :a AND kind = 'debit') AS d, "
        "(SELECT COUNT(*) FROM wallet_transactions"
        " WHERE account_id = :a AND kind = 'debit') AS dn, "
        "(SELECT COALESCE(SUM(cost_micro), 0) FROM usage_records WHERE account_id = :a) AS u, "
        "(SELECT COUNT(*) FROM usage_records WHERE account_id = :a) AS un, "
        "(SELECT COUNT(*) FROM usage_records WHERE account_id = :a AND cost_micro != 0)"
        " AS billed",
        a=account_id)
    return {k: int(v) for k, v in s.items()}


def balance(gw: Gateway, account_id: int) -> int:
    """The wallet's balance in micro-USD, as the ledger holds it."""
    [w] = gw.sql("SELECT balance_micro FROM wallets WHERE account_id = :a", a=account_id)
    return int(w["balance_micro"])


def assert_ledger_balances(gw: Gateway, account_id: int) -> dict[str, int]:
    """wallet balance == sum of its transactions == credits - usage costs, to the micro-dollar."""
    s = _snapshot(gw, account_id)
    assert s["w"] == s["t"] == s["c"] - s["u"], s
    assert -s["d"] == s["u"] and s["dn"] == s["billed"], s
    assert s["w"] >= 0, s
    return {"balance": s["w"], "spent": s["u"], "records": s["un"]}


def upstream_cost(fakes: Any, model: str = "kimi-k2") -> int:
    """What the fake upstreams billed (their reported usage, at ``model``'s catalog price)."""
    price = CATALOG.models[model].price
    return sum(f.billed_cost(price) for f in fakes)


def assert_invariants(gw: Gateway, account_id: int, *, fakes: Any = (), model: str = "kimi-k2",
                      budget: int | None = None, answered: int | None = None,
                      key_id: int | None = None, overrun: int = 0) -> dict[str, int]:
    """The money invariants of issue 12, checked after a test's requests have settled:

    * the upstream-reported cost of what was served is <= the key's budget and <= what the
      wallet was credited (``overrun``: by how much one lying upstream may pass them);
    * the wallet balance equals the sum of its transactions (and credits minus usage costs);
    * every answered request has exactly one usage record and, when it cost anything, exactly
      one debit of that cost (``answered``: how many the client saw answered, when known).
    """
    where = {"account_id": account_id} if key_id is None else {"key_id": key_id}
    recs = gw.usage(**where)
    ids = [r["id"] for r in recs]
    assert len(ids) == len(set(ids)), "a request has two usage records"
    if answered is not None:
        served = [r for r in recs if r["status"] in ("ok", "partial")]
        assert len(served) == answered, (len(served), answered, [r["status"] for r in recs])
    debits = {d["request_id"]: d for d in gw.sql(
        "SELECT request_id, amount_micro FROM wallet_transactions WHERE account_id = :a AND "
        "kind = 'debit'", a=account_id)}
    for r in recs:
        if r["cost_micro"]:
            d = debits.get(r["id"])
            assert d is not None, f"no debit for {r['id']}"
            assert -d["amount_micro"] == r["cost_micro"], (d, r["cost_micro"])
        else:
            assert r["id"] not in debits
    s = _snapshot(gw, account_id)
    assert s["w"] == s["t"] == s["c"] - s["u"], s
    upstream = upstream_cost(fakes, model)
    assert upstream <= s["c"] + overrun, f"upstream billed {upstream} > wallet {s['c']}"
    if budget is not None:
        assert upstream <= budget + overrun, f"upstream billed {upstream} > budget {budget}"
    return {"balance": s["w"], "spent": s["u"], "records": len(recs),
            "upstream": upstream}
