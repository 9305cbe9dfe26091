"""Issue 8: property-based fuzzing of a live gateway (Hypothesis).

Bodies, headers and raw bytes are generated against /v1/chat/completions, /v1/embeddings and
/admin/providers. Properties: never a 5xx, every error is an OpenAI-shaped JSON body without a
stack trace, and a refused request changes nothing in the ledger. Runs are bounded (a fixed
number of examples, and a wall-clock assertion).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartoken.auth.secretbox import generate_key
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config

MASTER = "fuzz-master-key-6Yh2Lq"
EXAMPLES = 250
BUDGET_S = 60

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4)
                           | st.dictionaries(st.text(max_size=12), c, max_size=4), max_leaves=12)
def mostly(valid: st.SearchStrategy[Any], junk: st.SearchStrategy[Any] = json_values
           ) -> st.SearchStrategy[Any]:
    """Valid four times in five: deep enough to pass validation, often enough to fail it."""
    return st.one_of(valid, valid, valid, junk)


models = mostly(st.sampled_from(["kimi-k2", "kimi-k2", "deepseek-chat", "moonshot-v1-auto"]),
                st.sampled_from(["text-embedding-v3", "", "nope", "kimi-k2 ", "../etc/passwd",
                                 "a" * 300]) | json_values)
parts = st.fixed_dictionaries({"type": mostly(st.sampled_from(["text", "image_url"]), scalars)},
                              optional={"text": st.text(max_size=40) | scalars})
messages = st.fixed_dictionaries(
    {"role": mostly(st.sampled_from(["system", "user", "assistant", "developer"]),
                    st.sampled_from(["tool", "robot"]) | scalars),
     "content": mostly(st.text(max_size=200), st.lists(parts, max_size=3) | json_values)},
    optional={"name": scalars, "tool_call_id": scalars})
chat_fields = {
    "stream": mostly(st.booleans()),
    "stream_options": mostly(st.fixed_dictionaries({}, optional={
        "include_usage": st.booleans()})),
    "max_tokens": mostly(st.integers(1, 4000), st.integers(-3, 10**9) | json_values),
    "max_completion_tokens": mostly(st.integers(1, 4000), st.integers(-3, 10**9)),
    "n": mostly(st.integers(1, 3), st.integers(-3, 300) | json_values),
    "temperature": mostly(st.floats(0, 2), st.floats(-1, 3) | json_values),
    "top_p": mostly(st.floats(0, 1), st.floats(-1, 2) | json_values),
    "stop": mostly(st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=4)),
    "tools": mostly(st.lists(st.fixed_dictionaries({"type": st.just("function"), "function":
                                                    st.fixed_dictionaries({"name": st.text(
                                                        min_size=1, max_size=8)})}),
                             max_size=2)),
    "tool_choice": mostly(st.sampled_from(["auto", "none", "required"])),
    "response_format": mostly(st.fixed_dictionaries({"type": st.sampled_from(
        ["text", "json_object"])}), st.fixed_dictionaries({"type": st.sampled_from(
            ["json_schema", "xml"])}) | json_values),
    "user": mostly(st.text(max_size=10)),
    "unknown_field": json_values,
}
chat_bodies = mostly(st.fixed_dictionaries(
    {"model": models, "messages": mostly(st.lists(messages, min_size=1, max_size=3),
                                         st.lists(messages, max_size=0) | json_values)},
    optional=chat_fields), json_values)
valid_fields = {
    "stream": st.booleans(), "max_tokens": st.integers(1, 2000), "n": st.integers(1, 2),
    "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "user": st.text(max_size=10),
    "stop": st.lists(st.text(min_size=1, max_size=4), max_size=3), "seed": st.integers(),
    "response_format": st.just({"type": "json_object"}), "tool_choice": st.just("auto"),
}
valid_chat = st.fixed_dictionaries(
    {"model": st.sampled_from(["kimi-k2", "deepseek-chat", "moonshot-v1-auto"]),
     "messages": st.lists(st.fixed_dictionaries({
         "role": st.sampled_from(["user", "system", "assistant"]),
         "content": st.text(max_size=300)}), min_size=1, max_size=3)},
    optional=valid_fields)
mutations = st.sampled_from([None, None, "model", "messages", "stream", "max_tokens", "n",
                             "temperature", "stream_options", "tools", "stop", "messages[0]"])
embedding_bodies = st.fixed_dictionaries({"model": models}, optional={
    "input": st.text(max_size=50) | st.lists(st.text(max_size=10) | st.integers(), max_size=4)
    | json_values, "dimensions": json_values})
provider_bodies = st.fixed_dictionaries({}, optional={
    "name": st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,10}", fullmatch=True) | scalars,
    "base_url": st.sampled_from(["http://127.0.0.1:9/v1", "https://x.example/v1", "ftp://x",
                                 "http://u:p@h/v1", "http://h:0/v1", "http://[::1/v1"])
    | st.text(max_size=30) | scalars,
    "api_key": st.text(max_size=20) | scalars, "dialect": st.sampled_from(
        ["openai", "moonshot", "demo", "qwen", "nope"]) | scalars,
    "headers": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2)
    | json_values,
    "timeouts": st.dictionaries(st.sampled_from(["connect", "idle", "total", "x"]),
                                st.floats(-1, 5000) | scalars, max_size=3) | json_values,
    "routes": st.lists(st.fixed_dictionaries({"model": models}, optional={
        "priority": st.integers(-2, 5) | scalars, "weight": st.integers(-2, 5) | scalars,
        "upstream_model": scalars, "enabled": scalars}), max_size=2) | json_values,
    "enabled": scalars})


def encoded(body: Any) -> st.SearchStrategy[bytes]:
    return mostly(st.just(json.dumps(body, allow_nan=True).encode()),
                  st.binary(max_size=64) | st.just(b"") | st.just(b'{"model": "kimi-k2", '))


header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(
    str.strip)


def check(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])
    assert "Traceback" not in r.text and 'File "' not in r.text, r.text[:500]
    assert r.headers.get("x-request-id", "").startswith("req_")
    if r.status_code >= 400:
        err = r.json()["error"]
        assert isinstance(err["message"], str) and err["message"]
        assert isinstance(err["type"], str)


def ledger(gw: Gateway) -> tuple[int, int, int]:
    [row] = gw.sql("SELECT (SELECT COUNT(*) FROM usage_records) AS u, "
                   "(SELECT COUNT(*) FROM wallet_transactions) AS t, "
                   "(SELECT COALESCE(SUM(balance_micro), 0) FROM wallets) AS b")
    return row["u"], row["t"], row["b"]


def test_fuzzed_requests_never_fail_or_bill_when_refused(fake: FakeUpstream,
                                                         make_inproc: Any) -> None:
    gw: Gateway = make_inproc(fake_config(fake, auth_failures_per_minute=1_000_000),
                               env={"SMARTOKEN_MASTER_KEY": MASTER,
                                    "SMARTOKEN_SECRET_KEY": generate_key()})
    broke = gw.key(account="broke")  # valid key, empty wallet: every valid call is refused
    funded = gw.key(account="funded", credit="1000")
    funded_records = [0]
    statuses: dict[int, int] = {}
    before = ledger(gw)
    started = time.monotonic()
    http = httpx.Client(base_url=gw.base_url, timeout=30)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=chat_bodies, data=st.data(),
           auth=st.sampled_from(["broke", "broke", "none", "bogus", "garbage", "funded",
                                 "funded", "funded"]),
           content_type=mostly(st.just("application/json"),
                               st.sampled_from(["text/plain", "", "multipart/x"])),
           garbage=header_values)
    def run(body: Any, data: Any, auth: str, content_type: str, garbage: str) -> None:
        raw = data.draw(encoded(body))
        headers = {"content-type": content_type} if content_type else {}
        if auth == "broke":
            headers["authorization"] = f"Bearer {broke}"
        elif auth == "funded":
            headers["authorization"] = f"Bearer {funded}"
        elif auth == "bogus":
            headers["authorization"] = "Bearer sk-st-" + garbage
        elif auth == "garbage":
            headers["authorization"] = garbage
        headers["x-fuzz"] = garbage
        path = data.draw(mostly(st.just("/v1/chat/completions"), st.just("/v1/embeddings")))
        if path == "/v1/embeddings" and data.draw(st.booleans()):
            raw = json.dumps(data.draw(embedding_bodies), allow_nan=True).encode()
        r = http.post(path, content=raw, headers=headers)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        check(r)
        if auth == "funded" and r.status_code == 200:
            funded_records[0] += 1

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=valid_chat, field=mutations, junk=json_values,
           funded_key=st.booleans())
    def near_valid(body: dict[str, Any], field: str | None, junk: Any, funded_key: bool) -> None:
        if field == "messages[0]":
            body["messages"][0] = junk
        elif field is not None:
            body[field] = junk
        key = funded if funded_key else broke
        r = http.post("/v1/chat/completions", content=json.dumps(body, allow_nan=True).encode(),
                      headers={"authorization": f"Bearer {key}"})
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        check(r)
        if funded_key and r.status_code == 200:
            funded_records[0] += 1
        if not funded_key:
            assert r.status_code != 200

    run()
    near_valid()
    assert statuses.get(200, 0) >= 10, statuses  # the fuzz reached the relay, not just checks
    # Every refused request left the ledger as it was; the funded key's successes each left
    # exactly one record (and nothing else did).
    rows = gw.wait_usage(funded_records[0])
    time.sleep(0.3)
    after = ledger(gw)
    assert after[0] - before[0] == len(gw.usage()) == funded_records[0]
    assert all(r["key_id"] == gw.key_ids[funded] for r in rows)
    broke_id = gw.key_ids[broke]
    assert gw.sql("SELECT COUNT(*) AS n FROM usage_records WHERE key_id = :k", k=broke_id
                  )[0]["n"] == 0
    assert gw.sql("SELECT COUNT(*) AS n FROM wallet_transactions WHERE kind = 'debit' AND "
                  "account_id = (SELECT account_id FROM api_keys WHERE id = :k)", k=broke_id
                  )[0]["n"] == 0
    http.close()
    assert time.monotonic() - started < BUDGET_S * 2


def test_fuzzed_admin_bodies_never_fail(fake: FakeUpstream, make_inproc: Any) -> None:
    gw: Gateway = make_inproc(fake_config(fake), env={"SMARTOKEN_MASTER_KEY": MASTER,
                                                       "SMARTOKEN_SECRET_KEY": generate_key()})
    started = time.monotonic()
    http = httpx.Client(base_url=gw.base_url, timeout=30,
                        headers={"authorization": f"Bearer {MASTER}"})
    created: set[str] = set()

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=provider_bodies, method=st.sampled_from(["POST", "PATCH"]),
           name=st.sampled_from(["p", "q", "nope", "%2e%2e", "demo"]))
    def run(body: Any, method: str, name: str) -> None:
        raw = json.dumps(body, allow_nan=True).encode()
        path = "/admin/providers" if method == "POST" else f"/admin/providers/{name}"
        r = http.request(method, path, content=raw)
        check(r)
        if r.status_code == 201:
            created.add(r.json()["name"])
            assert r.json()["base_url"].startswith(("http://", "https://"))

    run()
    listed = http.get("/admin/providers").json()["data"]
    assert {p["name"] for p in listed} == created
    for p in listed:
        assert "@" not in p["base_url"] and p["base_url"].startswith(("http://", "https://"))
    # The gateway still serves after whatever was stored.
    key = gw.key(credit="1")
    r = httpx.post(gw.base_url + "/v1/chat/completions", timeout=30,
                   headers={"authorization": f"Bearer {key}"},
                   json={"model": "kimi-k2", "messages": [{"role": "user", "content": "hi"}]})
    check(r)
    http.close()
    assert time.monotonic() - started < BUDGET_S
