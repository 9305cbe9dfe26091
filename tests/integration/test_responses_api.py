"""Issue 13: the OpenAI Responses API and legacy Completions through the official openai SDK,
against the fake upstream over real HTTP, on the same relay as Chat Completions."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smartoken.catalog.builtin import builtin_catalog
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config
from tests.moneykit import (
    MASTER,
    MAX_TOKENS,
    MESSAGES,
    AdminAPI,
    assert_ledger_balances,
    exact_usage,
    usd,
    worst_case,
)

KIMI_PRICE = builtin_catalog().models["kimi-k2"].price
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


@pytest.fixture
def gw(fake: FakeUpstream, make_inproc: Any) -> Gateway:
    return make_inproc(fake_config(fake))


def _events(raw: str) -> list[dict[str, Any]]:
    out = []
    for block in raw.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            ev = orjson.loads(lines["data"])
            assert lines.get("event") == ev["type"]
            out.append(ev)
    return out


def test_create_bills_once_and_notes_the_protocol(gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(content="Kimi reads long documents.",
             usage={"prompt_tokens": 1200, "completion_tokens": 345})
    client = gw.client(gw.key(credit="10"))
    resp = client.responses.create(model="kimi-k2", input="hello", instructions="be brief",
                                   max_output_tokens=500, temperature=0.3)
    assert resp.output_text == "Kimi reads long documents."
    assert resp.status == "completed" and resp.model == "kimi-k2"
    assert resp.id.startswith("resp_") and resp.output[0].type == "message"
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (1200, 345)
    sent = fake.requests[-1]
    assert sent["messages"] == [{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "hello"}]
    assert sent["max_tokens"] == 500 and sent["temperature"] == 0.3
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "ok" and rec["cost_micro"] == KIMI_PRICE.cost(1200, 345)
    assert rec["protocol"] == "responses"
    assert rec["id"].removeprefix("req_") == resp.id.removeprefix("resp_")


def test_stream_typed_events_and_usage(gw: Gateway, fake: FakeUpstream) -> None:
    text = " ".join(f"word{i}" for i in range(30))
    fake.set(content=text, chunks=10, usage={"prompt_tokens": 40, "completion_tokens": 30})
    client = gw.client(gw.key(credit="10"))
    with client.responses.stream(model="kimi-k2", input="count") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == text
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == text and final.usage is not None
    assert final.usage.output_tokens == 30
    [rec] = gw.wait_usage(1)
    assert rec["stream"] and rec["completion_tokens"] == 30 and rec["status"] == "ok"


def test_tools_round_trip_with_previous_response_id(gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(tool_call={"name": "get_weather", "arguments": '{"city": "Paris"}'},
             tool_call_once=True, content="Sunny in Paris.")
    client = gw.client(gw.key(credit="10"))
    first = client.responses.create(model="kimi-k2", input="Weather in Paris?",
                                    tools=[WEATHER])  # type: ignore[list-item]
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.arguments == '{"city": "Paris"}' and call.call_id == "call_fake1"
    assert fake.requests[-1]["tools"][0]["function"]["name"] == "get_weather"
    second = client.responses.create(
        model="kimi-k2", previous_response_id=first.id, tools=[WEATHER],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.output_text == "Sunny in Paris."
    assert second.previous_response_id == first.id
    msgs = fake.requests[-1]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool"]
    assert msgs[1]["tool_calls"][0]["id"] == "call_fake1"
    assert msgs[2] == {"role": "tool", "tool_call_id": "call_fake1", "content": "sunny"}
    # streamed, the call arrives as typed events, and the streamed answer is stored too
    with client.responses.stream(model="kimi-k2", input="Weather in Rome?",
                                 tools=[WEATHER]) as stream:  # type: ignore[list-item]
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    assert final.output[0].type == "function_call"
    third = client.responses.create(model="kimi-k2", previous_response_id=final.id,
                                    input=[{"type": "function_call_output",
                                            "call_id": "call_fake1", "output": "rain"}])
    assert third.output_text == "Sunny in Paris."
    assert [m["role"] for m in fake.requests[-1]["messages"]] == ["user", "assistant", "tool"]


def test_stored_responses_get_delete_per_account_and_store_false(gw: Gateway,
                                                                  fake: FakeUpstream) -> None:
    fake.set(content="stored answer")
    mine, other = gw.client(gw.key(credit="10")), gw.client(gw.key("bob", credit="10"))
    resp = mine.responses.create(model="kimi-k2", input="keep this")
    got = mine.responses.retrieve(resp.id)
    assert got.id == resp.id and got.output_text == "stored answer"
    items = mine.responses.input_items.list(resp.id)
    assert [i.type for i in items.data] == ["message"]
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(resp.id)  # another account
    with pytest.raises(openai.NotFoundError) as exc:
        other.responses.create(model="kimi-k2", input="x", previous_response_id=resp.id)
    assert exc.value.body["param"] == "previous_response_id"  # type: ignore[index]
    mine.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        mine.responses.retrieve(resp.id)
    unstored = mine.responses.create(model="kimi-k2", input="forget", store=False)
    with pytest.raises(openai.NotFoundError):
        mine.responses.retrieve(unstored.id)
    assert gw.sql("SELECT COUNT(*) AS n FROM stored_responses")[0]["n"] == 0


def test_json_schema_reasoning_and_codex_fields_are_translated(gw: Gateway,
                                                               fake: FakeUpstream) -> None:
    fake.set(content='{"ok": true}')
    client = gw.client(gw.key(credit="10"))
    resp = client.responses.create(
        model="kimi-k2", input=[{"role": "developer", "content": "rules"},
                                {"role": "user", "content": "json please"}],
        reasoning={"effort": "low", "summary": "auto"}, store=False,
        text={"format": {"type": "json_schema", "name": "ok", "strict": True,
                         "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}},
                                    "required": ["ok"], "additionalProperties": False}}},
        include=["reasoning.encrypted_content"], prompt_cache_key="abc",
        parallel_tool_calls=False,
        tools=[WEATHER, {"type": "web_search"}])  # type: ignore[list-item]
    assert resp.output_text == '{"ok": true}'
    sent = fake.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "rules"}
    assert sent["response_format"]["json_schema"]["name"] == "ok"
    assert sent["reasoning_effort"] == "low" and sent["parallel_tool_calls"] is False
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    for dropped in ("include", "prompt_cache_key", "store", "reasoning", "text", "input"):
        assert dropped not in sent


def test_errors_are_openai_shaped(gw: Gateway, fake: FakeUpstream) -> None:
    key = gw.key(credit="10")
    client = gw.client(key)
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="kimi-k2", input=[{"role": "boss", "content": "x"}])
    assert bad.value.body["param"] == "input[0].role"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as nf:
        client.responses.create(model="no-such-model", input="x")
    assert nf.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        gw.client("sk-st-wrong").responses.create(model="kimi-k2", input="x")
    r = httpx.post(gw.base_url + "/v1/responses", content=b"{not json",
                   headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert not gw.usage()


def test_cut_stream_ends_with_failed_event_and_bills_what_was_delivered(
        gw: Gateway, fake: FakeUpstream) -> None:
    text = " ".join(f"w{i}" for i in range(40))
    fake.set(content=text, chunks=20, cut_after=5)
    key = gw.key(credit="10")
    with httpx.stream("POST", gw.base_url + "/v1/responses", timeout=30,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": "kimi-k2", "input": "go", "stream": True}) as r:
        assert r.status_code == 200
        events = _events(r.read().decode())
    kinds = [e["type"] for e in events]
    assert kinds[-2:] == ["error", "response.failed"], kinds
    assert "response.completed" not in kinds
    delivered = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert delivered and len(delivered) < len(text)
    failed = events[-1]["response"]
    [rec] = gw.wait_usage(1)
    assert rec["status"] == "partial" and rec["usage_estimated"]
    assert rec["completion_tokens"] == failed["usage"]["output_tokens"] > 0
    assert 0 < rec["cost_micro"] == KIMI_PRICE.cost(rec["prompt_tokens"],
                                                    rec["completion_tokens"])


def test_legacy_completions(gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(content="def add(a, b): return a + b",
             usage={"prompt_tokens": 10, "completion_tokens": 9})
    client = gw.client(gw.key(credit="10"))
    resp = client.completions.create(model="kimi-k2", prompt="# add two numbers\n",
                                     max_tokens=64)
    assert resp.object == "text_completion" and resp.model == "kimi-k2"
    assert resp.choices[0].text == "def add(a, b): return a + b"
    assert resp.usage is not None and resp.usage.completion_tokens == 9
    assert fake.requests[-1]["messages"] == [{"role": "user", "content": "# add two numbers\n"}]
    chunks = list(client.completions.create(model="kimi-k2", prompt="x", stream=True,
                                            stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == \
        "def add(a, b): return a + b"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 9
    with pytest.raises(openai.BadRequestError) as exc:
        client.completions.create(model="kimi-k2", prompt="def f(", suffix="\n    return 1")
    assert exc.value.body["param"] == "suffix"  # type: ignore[index]
    assert "fill in the middle" in exc.value.message
    recs = gw.wait_usage(2)
    assert all(r["protocol"] == "completions" for r in recs)


async def _one_response(client: openai.AsyncOpenAI, stream: bool, input_: str,
                        max_tokens: int) -> str:
    try:
        if stream:
            s = await client.responses.create(model="kimi-k2", input=input_, stream=True,
                                              max_output_tokens=max_tokens, store=False)
            async for _ in s:
                pass
        else:
            await client.responses.create(model="kimi-k2", input=input_, store=False,
                                          max_output_tokens=max_tokens)
        return "ok"
    except openai.APIStatusError as exc:
        return f"{exc.status_code}:{exc.code}"


def test_200_concurrent_responses_on_a_budget_for_50_never_overspend(
        fake: FakeUpstream, make_inproc: Any) -> None:
    w = worst_case()
    fake.set(usage=exact_usage(), chunks=3, first_byte_delay=0.05)
    gw = make_inproc(fake_config(fake), env={"SMARTOKEN_MASTER_KEY": MASTER})
    admin = AdminAPI(gw)
    aid = admin.account("team", credit="10")
    key, kid = admin.key(aid, daily_budget=usd(50 * w))

    async def burst() -> list[str]:
        client = gw.async_client(key, timeout=120)
        try:
            return list(await asyncio.gather(*(
                _one_response(client, i % 2 == 0, MESSAGES[0]["content"], MAX_TOKENS)
                for i in range(200))))
        finally:
            await client.close()

    results = asyncio.run(burst())
    assert results.count("ok") == 50, sorted(set(results))
    assert results.count("429:budget_exceeded") == 150
    recs = gw.wait_usage(50, key_id=kid)
    assert len(recs) == 50 and all(r["status"] == "ok" for r in recs)
    assert sum(r["cost_micro"] for r in recs) == 50 * w  # the upstream's cost <= budget
    ledger = assert_ledger_balances(gw, aid)
    assert ledger["spent"] == 50 * w


ITEMS = st.fixed_dictionaries({"type": st.sampled_from(
    ["message", "function_call", "function_call_output", "reasoning", "web_search_call",
     "custom_tool_call", "item_reference"])}, optional={
    "role": st.sampled_from(["user", "assistant", "developer", "system", "tool", ""]),
    "content": st.one_of(st.text(max_size=20), st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["input_text", "output_text", "input_image", "input_file",
                                  "refusal", "x"])},
        optional={"text": st.text(max_size=10), "image_url": st.text(max_size=10),
                  "file_id": st.text(max_size=5)}), max_size=3), st.integers()),
    "call_id": st.one_of(st.text(max_size=6), st.none(), st.integers()),
    "name": st.one_of(st.text(max_size=6), st.none()),
    "arguments": st.one_of(st.text(max_size=10), st.integers()),
    "output": st.one_of(st.text(max_size=10), st.lists(st.integers(), max_size=2)),
    "summary": st.lists(st.fixed_dictionaries({"type": st.just("summary_text"),
                                               "text": st.text(max_size=5)}), max_size=2),
    "encrypted_content": st.text(max_size=20)})
RESPONSE_BODIES = st.fixed_dictionaries({"model": st.sampled_from(["kimi-k2", "nope", "", 3])},
                                        optional={
    "input": st.one_of(st.text(max_size=20), st.lists(ITEMS, max_size=4), st.integers()),
    "instructions": st.one_of(st.text(max_size=10), st.integers()),
    "stream": st.one_of(st.booleans(), st.text(max_size=2)),
    "store": st.one_of(st.booleans(), st.integers()),
    "max_output_tokens": st.one_of(st.integers(-5, 300), st.text(max_size=2)),
    "temperature": st.one_of(st.floats(-1, 3), st.text(max_size=2)),
    "tools": st.one_of(st.lists(st.fixed_dictionaries({"type": st.sampled_from(
        ["function", "namespace", "custom", "web_search", "mcp", 7])}, optional={
        "name": st.one_of(st.text(max_size=8), st.none()),
        "tools": st.lists(st.fixed_dictionaries({"type": st.just("function"),
                                                 "name": st.text(max_size=5)}), max_size=2),
        "parameters": st.one_of(st.just({"type": "object"}), st.integers())}), max_size=3),
        st.text(max_size=3)),
    "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required", "x"]),
                             st.fixed_dictionaries({"type": st.just("function"),
                                                    "name": st.text(max_size=5)})),
    "text": st.one_of(st.fixed_dictionaries({"format": st.fixed_dictionaries({
        "type": st.sampled_from(["text", "json_schema", "json_object", "yaml"])},
        optional={"schema": st.one_of(st.just({"type": "object"}), st.integers()),
                  "name": st.text(max_size=5)})}), st.integers()),
    "reasoning": st.one_of(st.fixed_dictionaries({}, optional={
        "effort": st.sampled_from(["none", "low", "high", "bogus"]),
        "summary": st.sampled_from(["auto", None])}), st.text(max_size=2)),
    "previous_response_id": st.one_of(st.text(max_size=8), st.integers()),
    "include": st.one_of(st.lists(st.text(max_size=30), max_size=2), st.text(max_size=3))})


def test_fuzzed_responses_requests_never_5xx_and_bill_only_answers(
        gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(content="fine", usage={"prompt_tokens": 5, "completion_tokens": 1})
    key = gw.key(credit="100")
    http = httpx.Client(base_url=gw.base_url, timeout=30,
                        headers={"Authorization": f"Bearer {key}"})
    answered = [0]

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=RESPONSE_BODIES)
    # answered at least once whatever is drawn (120 random bodies were all refused once)
    @example(body={"model": "kimi-k2", "input": "hello"})
    @example(body={"model": "kimi-k2", "input": "hi", "stream": True, "store": False})
    def run(body: dict[str, Any]) -> None:
        r = http.post("/v1/responses", json=body)
        assert r.status_code < 500, (body, r.text[:300])
        if r.status_code == 200:
            answered[0] += 1
        else:
            assert r.json()["error"]["message"]

    run()
    http.close()
    assert answered[0] > 0
    assert len(gw.wait_usage(answered[0])) == answered[0]  # one record per answered request


@pytest.mark.parametrize(("dialect", "path"), [("deepseek", "/beta/completions"),
                                               ("qwen", "/v1/completions")])
def test_suffix_goes_to_the_fim_endpoint_of_deepseek_and_qwen(
        make_fake: Any, make_inproc: Any, dialect: str, path: str) -> None:
    fake = make_fake(dialect=dialect, content="return a + b",
                     usage={"prompt_tokens": 12, "completion_tokens": 4})
    gw = make_inproc(fake_config(fake))
    client = gw.client(gw.key(credit="5"))
    resp = client.completions.create(model="kimi-k2", prompt="def add(a, b):\n    ",
                                     suffix="\n\nprint(add(1, 2))", max_tokens=32)
    assert resp.choices[0].text == "return a + b" and resp.object == "text_completion"
    sent = fake.requests[-1]
    assert sent["_path"] == path and sent["model"] == "kimi-k2-upstream"
    assert (sent["prompt"], sent["suffix"]) == ("def add(a, b):\n    ", "\n\nprint(add(1, 2))")
    assert sent["max_tokens"] == 32 and "messages" not in sent
    chunks = list(client.completions.create(model="kimi-k2", prompt="x = ", suffix=";",
                                            stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "return a + b"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert fake.requests[-1]["stream"] is True and fake.requests[-1]["_path"] == path
    recs = gw.wait_usage(2)
    assert [r["status"] for r in recs] == ["ok", "ok"]
    assert all(r["protocol"] == "completions" and r["completion_tokens"] == 4 and
               r["cost_micro"] == KIMI_PRICE.cost(12, 4) for r in recs)
