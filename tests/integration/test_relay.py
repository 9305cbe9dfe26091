"""Issue 2: the relay through the official openai SDK, against a fake upstream over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import httpx
import openai
import pytest

from smartoken.catalog.builtin import builtin_catalog
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.moneykit import assert_invariants, upstream_cost

KIMI_PRICE = builtin_catalog().models["kimi-k2"].price


@pytest.fixture
def gw(fake: FakeUpstream, make_inproc: Any) -> Gateway:
    return make_inproc(fake_config(fake))


def test_non_stream_equals_upstream_and_is_billed(gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(content="Kimi reads long documents.",
             usage={"prompt_tokens": 1200, "completion_tokens": 345})
    key = gw.key(credit="10")
    resp = gw.client(key).chat.completions.create(
        model="kimi-k2", messages=[{"role": "user", "content": "hello"}])
    assert resp.choices[0].message.content == "Kimi reads long documents."
    assert resp.model == "kimi-k2"
    assert resp.usage is not None and resp.usage.prompt_tokens == 1200
    assert fake.requests[-1]["model"] == "kimi-k2-upstream"
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "ok" and rec["prompt_tokens"] == 1200
    assert rec["completion_tokens"] == 345 and not rec["usage_estimated"]
    # kimi-k2 is served as kimi-k2.6: 1200 x $0.95/1M + 345 x $4.00/1M = 1140 + 1380 micro-USD
    assert rec["cost_micro"] == KIMI_PRICE.cost(1200, 345) == 2520
    [debit] = gw.sql("SELECT * FROM wallet_transactions WHERE kind = 'debit'")
    assert debit["amount_micro"] == -2520 and debit["request_id"] == rec["id"]


def test_stream_relays_every_chunk_and_usage_on_request(gw: Gateway, fake: FakeUpstream) -> None:
    text = " ".join(f"word{i}" for i in range(40))
    fake.set(content=text, chunks=20, usage={"prompt_tokens": 50, "completion_tokens": 40})
    client = gw.client(gw.key(credit="10"))
    stream = client.chat.completions.create(
        model="kimi-k2", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "count"}])
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 40
    assert all(c.model == "kimi-k2" for c in chunks)
    # Usage is always asked upstream, and only shown when the client asked.
    plain = list(client.chat.completions.create(
        model="kimi-k2", stream=True, messages=[{"role": "user", "content": "count"}]))
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason == "stop"
    assert all(r["stream_options"] == {"include_usage": True} for r in fake.requests)
    recs = gw.wait_usage(2)
    assert [r["completion_tokens"] for r in recs] == [40, 40]
    assert all(r["stream"] and r["status"] == "ok" for r in recs)


def test_tool_calls_round_trip(gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(tool_call={"name": "get_weather", "arguments": '{"city": "Beijing"}'})
    client = gw.client(gw.key(credit="10"))
    tools = [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}}}}}]
    resp = client.chat.completions.create(
        model="kimi-k2", tools=tools, tool_choice="auto",
        messages=[{"role": "user", "content": "weather?"}])
    call = resp.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Beijing"}
    assert fake.requests[-1]["tools"] == tools and fake.requests[-1]["tool_choice"] == "auto"
    chunks = list(client.chat.completions.create(
        model="kimi-k2", tools=tools, stream=True,
        messages=[{"role": "user", "content": "weather?"}]))
    args = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                   for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    assert json.loads(args) == {"city": "Beijing"}
    # The tool result goes back upstream as sent.
    fake.set(content="Sunny.")
    resp = client.chat.completions.create(model="kimi-k2", tools=tools, messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
    assert resp.choices[0].message.content == "Sunny."
    assert fake.requests[-1]["messages"][2]["tool_call_id"] == call.id


def test_json_mode_and_unknown_fields_pass_through(gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(content='{"ok": true}')
    client = gw.client(gw.key(credit="10"))
    resp = client.chat.completions.create(
        model="kimi-k2", response_format={"type": "json_object"}, temperature=0.3, seed=7,
        messages=[{"role": "user", "content": "json please"}],
        extra_body={"enable_thinking": False, "partial_mode": True})
    assert json.loads(resp.choices[0].message.content) == {"ok": True}
    sent = fake.requests[-1]
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["enable_thinking"] is False and sent["partial_mode"] is True
    assert sent["seed"] == 7 and sent["temperature"] == 0.3


def test_errors_are_openai_shaped_and_bill_nothing(gw: Gateway, fake: FakeUpstream) -> None:
    key = gw.key(credit="10")
    with pytest.raises(openai.AuthenticationError):
        gw.client("sk-st-wrong").chat.completions.create(
            model="kimi-k2", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError) as nf:
        gw.client(key).chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert nf.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        gw.client(key).chat.completions.create(model="kimi-k2", messages=[])
    url = gw.base_url + "/v1/chat/completions"
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bad_bodies = [b"{not json", b"[]", b'{"model": "kimi-k2"}',
                  b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}',
                  b'{"model": "kimi-k2", "messages": "hi"}',
                  b'{"model": "kimi-k2", "messages": [{"role": "robot", "content": "x"}]}',
                  b'{"model": "kimi-k2", "messages": [{"role": "user", "content": "x"}], '
                  b'"max_tokens": "ten"}',
                  b'{"model": "kimi-k2", "messages": [{"role": "user", "content": "x"}], '
                  b'"temperature": 9}']
    for body in bad_bodies:
        r = httpx.post(url, content=body, headers=auth)
        assert r.status_code == 400, body
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["message"]
        assert r.headers["x-request-id"].startswith("req_")
    r = httpx.post(url, content=b"x" * (33 * 1024 * 1024), headers=auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    r = httpx.get(gw.base_url + "/nowhere")
    assert r.status_code == 404 and "error" in r.json() and r.headers["x-request-id"]
    assert fake.requests == []
    assert gw.usage() == []
    assert gw.sql("SELECT * FROM wallet_transactions WHERE kind = 'debit'") == []


def test_models_endpoints(gw: Gateway) -> None:
    client = gw.client(gw.key(families=["kimi"]))
    ids = {m.id for m in client.models.list()}
    assert "kimi-k2" in ids and "moonshot-v1-8k" in ids and "deepseek-chat" not in ids
    model = client.models.retrieve("kimi-k2")
    assert model.id == "kimi-k2" and model.owned_by == "Moonshot AI"
    demo = client.models.retrieve("moonshot-v1-8k")
    assert demo.owned_by == "smartoken-demo"  # not routed to a vendor: labelled as the demo
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("deepseek-chat")


def test_health_and_readiness(gw: Gateway) -> None:
    assert httpx.get(gw.base_url + "/healthz").json() == {"status": "ok"}
    r = httpx.get(gw.base_url + "/readyz")
    assert r.status_code == 200 and r.json()["database"] == "ok"


def test_embeddings_routed_and_billed(gw: Gateway, fake: FakeUpstream) -> None:
    client = gw.client(gw.key(credit="10"))
    resp = client.embeddings.create(model="demo-embedding", input=["hello world", "again"])
    assert len(resp.data) == 2 and len(resp.data[0].embedding) == 256
    [rec] = gw.wait_usage(1)
    assert rec["model"] == "demo-embedding" and rec["prompt_tokens"] == resp.usage.prompt_tokens


def test_embedding_dimensions_are_bounded_before_anything_is_built(gw: Gateway) -> None:
    """``dimensions`` was taken as given: ``true`` made 1-dimensional vectors, 0 empty ones, and
    10**8 had the demo provider build a 100-million-float vector per input."""
    key = gw.key(credit="10")
    client = gw.client(key)
    assert len(client.embeddings.create(model="demo-embedding", input="hi",
                                        dimensions=64).data[0].embedding) == 64
    for bad in (True, 0, -3, 1.5, "64", 10**8, 10**30):
        r = httpx.post(gw.base_url + "/v1/embeddings", headers={"Authorization": f"Bearer {key}"},
                       json={"model": "demo-embedding", "input": ["a", "b"], "dimensions": bad})
        assert r.status_code == 400 and r.json()["error"]["param"] == "dimensions", (bad, r.text)
    # within the wire's bound, above the demo's: the provider refuses it, nothing is billed
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model="demo-embedding", input="hi", dimensions=5000)
    records = gw.wait_usage(2)
    assert sorted(r["status"] for r in records) == ["ok", "rejected"]
    assert [r["cost_micro"] for r in records if r["status"] == "rejected"] == [0]


def test_sigterm_flushes_every_usage_record(gw: Gateway, fake: FakeUpstream) -> None:
    client = gw.client(gw.key(credit="10"))
    for _ in range(15):
        client.chat.completions.create(model="kimi-k2",
                                       messages=[{"role": "user", "content": "x"}])
    assert gw.stop() == 0
    assert len(gw.usage()) == 15


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_seed_curl_example_streams(make_gateway: Any) -> None:
    gw = make_gateway()  # embedded default: kimi-k2 on the demo provider
    key = gw.key(credit="1")
    out = subprocess.run([
        "curl", "-s", f"{gw.base_url}/v1/chat/completions",
        "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {key}",
        "-d", json.dumps({"model": "kimi-k2", "stream": True, "messages": [
            {"role": "user", "content": "Explain the best use case for this model."}]}),
    ], capture_output=True, check=True, timeout=30).stdout.decode()
    events = [e for e in out.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert "demo" in text and "Explain the best use case" in text
    [rec] = gw.wait_usage(1)
    assert rec["provider"] == "demo" and rec["completion_tokens"] > 0 and rec["cost_micro"] > 0


def test_an_abandoned_unary_answer_is_recorded_client_closed_and_billed(
        make_fake: Any, make_inproc: Any) -> None:
    """Issue 12 item 15: a client that hangs up while its non-stream answer is being made.
    Before, the record said ok/200; the upstream still answers and bills, so the record is
    client_closed/499 with the upstream's usage, charged what the upstream reported."""
    fake = make_fake(first_byte_delay=1.0)
    gw = make_inproc(fake_config(fake))
    key = gw.key("abandoner", credit="10")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gw.base_url + "/v1/chat/completions", timeout=0.3,
                   headers={"Authorization": f"Bearer {key}"},
                   json={"model": "kimi-k2", "max_tokens": 50,
                         "messages": [{"role": "user", "content": "hello there"}]})
    [rec] = gw.wait_usage(1)
    assert (rec["status"], rec["http_status"]) == ("client_closed", 499), rec
    assert not rec["usage_estimated"] and rec["cost_micro"] == upstream_cost([fake]) > 0
    aid = gw.account("abandoner")
    assert_invariants(gw, aid, fakes=[fake], answered=0)
