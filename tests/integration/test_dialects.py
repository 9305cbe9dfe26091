"""One test per dialect of ../shared/PROVIDERS.md: a fake upstream speaking it, the openai SDK as
the client. The client sees plain OpenAI objects; the usage record has the right tokens and cost."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from smartoken.money import Price, parse_usd
from tests.harness import Gateway, fake_config

MSG = [{"role": "user", "content": "hello"}]


def one_route(make_fake: Any, make_inproc: Any, dialect: str, model: str = "kimi-k2",
              upstream: str = "up-model", price: dict[str, str] | None = None,
              **scenario: Any) -> tuple[Gateway, Any, openai.OpenAI]:
    fake = make_fake(dialect=dialect, **scenario)
    spec: dict[str, Any] = {"routes": [{"provider": "fake0", "upstream_model": upstream}]}
    spec.update(price or {})
    gw = make_inproc(fake_config(fake, models={model: spec}))
    return gw, fake, gw.client(gw.key(credit="10"))


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


PRICE = {"input_price": "1.00", "output_price": "2.00", "cached_input_price": "0.10"}
P = Price(parse_usd("1.00"), parse_usd("2.00"), parse_usd("0.10"))


def test_moonshot(make_fake: Any, make_inproc: Any) -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 50, "cached_tokens": 600}
    gw, fake, client = one_route(make_fake, make_inproc, "moonshot", price=PRICE, usage=usage)
    chunks = list(client.chat.completions.create(
        model="kimi-k2", messages=MSG, stream=True, temperature=1.7, n=1,
        stream_options={"include_usage": True}))
    assert text_of(chunks).startswith("The quick brown fox")
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 1000
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 600
    assert all("usage" not in (c.choices[0].model_extra or {}) for c in chunks if c.choices)
    assert fake.requests[-1]["temperature"] == 1.0  # clamped into Kimi's 0-1
    resp = client.chat.completions.create(model="kimi-k2", messages=MSG, temperature=0, n=3)
    assert fake.requests[-1]["n"] == 1 and resp.choices[0].message.content
    client.chat.completions.create(model="kimi-k2", messages=MSG, temperature=0.5, n=9)
    assert fake.requests[-1]["n"] == 5
    recs = gw.wait_usage(3)
    assert [r["cached_tokens"] for r in recs] == [600] * 3
    assert recs[0]["cost_micro"] == P.cost(1000, 50, 600) == 400 + 60 + 100
    # some versions repeat usage at top level: the last value wins, never summed
    fake.set(dialect="moonshot-both", usage=usage)
    list(client.chat.completions.create(model="kimi-k2", messages=MSG, stream=True))
    assert gw.wait_usage(4)[-1]["prompt_tokens"] == 1000


def test_moonshot_out_of_balance_is_not_the_clients_429(make_fake: Any,
                                                       make_inproc: Any) -> None:
    gw, fake, client = one_route(make_fake, make_inproc, "moonshot", out_of_balance=True)
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="kimi-k2", messages=MSG)
    assert exc.value.status_code == 503  # the upstream's 429 is not passed on as the client's
    assert "out of balance" in exc.value.body["message"]  # type: ignore[index]
    assert len(fake.requests) == 1 and gw.wait_usage(1)[0]["status"] == "upstream_error"


def test_deepseek(make_fake: Any, make_inproc: Any) -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_cache_hit_tokens": 800,
             "prompt_cache_miss_tokens": 200,
             "completion_tokens_details": {"reasoning_tokens": 40}}
    gw, fake, client = one_route(make_fake, make_inproc, "deepseek", model="deepseek-reasoner",
                                 upstream="deepseek-reasoner", price=PRICE, usage=usage,
                                 reasoning="Let me think.")
    resp = client.chat.completions.create(
        model="deepseek-reasoner", temperature=0.2, logprobs=True, messages=[
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b", "reasoning_content": "old thoughts"},
            {"role": "user", "content": "c"}])
    assert resp.choices[0].message.model_extra["reasoning_content"] == "Let me think."
    sent = fake.requests[-1]
    assert "temperature" not in sent and "logprobs" not in sent
    assert "reasoning_content" not in sent["messages"][1]
    chunks = list(client.chat.completions.create(model="deepseek-reasoner", messages=MSG,
                                                 stream=True))
    assert any((c.choices[0].delta.model_extra or {}).get("reasoning_content") == "Let me think."
               for c in chunks if c.choices)
    recs = gw.wait_usage(2)
    assert all(r["cached_tokens"] == 800 and r["reasoning_tokens"] == 40 for r in recs)
    assert recs[0]["cost_micro"] == P.cost(1000, 100, 800) == 200 + 80 + 200
    fake.set(dialect="deepseek", status=422, error_body={"error": {
        "message": "Invalid max_tokens", "type": "invalid_request_error"}})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    fake.set(dialect="deepseek", out_of_balance=True)  # 402: the route's problem
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    assert exc.value.status_code == 503


def test_qwen(make_fake: Any, make_inproc: Any) -> None:
    usage = {"prompt_tokens": 300, "completion_tokens": 30}
    gw, fake, client = one_route(make_fake, make_inproc, "qwen", model="qwen-plus",
                                 price=PRICE, usage=usage)
    resp = client.chat.completions.create(model="qwen-plus", messages=MSG)
    assert fake.requests[-1]["enable_thinking"] is False  # the fake refuses it otherwise
    assert resp.usage is not None and resp.usage.total_tokens == 330
    chunks = list(client.chat.completions.create(model="qwen-plus", messages=MSG, stream=True))
    assert all(c.usage is None for c in chunks) and text_of(chunks)
    assert fake.requests[-1]["stream_options"] == {"include_usage": True}
    recs = gw.wait_usage(2)
    assert [r["prompt_tokens"] for r in recs] == [300, 300] and not recs[1]["usage_estimated"]
    assert recs[1]["cost_micro"] == P.cost(300, 30)
    fake.set(dialect="qwen", status=400, error_body={
        "error": {"message": "Range of input length should be [1, 30720]",
                  "type": "invalid_request_error", "code": "invalid_parameter_error"},
        "request_id": "abc-123"})
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="qwen-plus", messages=MSG)
    assert "abc-123" in exc.value.body["message"]  # type: ignore[index]
    assert exc.value.body["code"] == "invalid_parameter_error"  # type: ignore[index]


def test_glm(make_fake: Any, make_inproc: Any) -> None:
    usage = {"prompt_tokens": 120, "completion_tokens": 12}
    gw, fake, client = one_route(make_fake, make_inproc, "glm", model="glm-4.6", price=PRICE,
                                 usage=usage, finish_reason="sensitive")
    resp = client.chat.completions.create(model="glm-4.6", messages=MSG)
    assert resp.choices[0].finish_reason == "content_filter"
    chunks = list(client.chat.completions.create(model="glm-4.6", messages=MSG, stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    recs = gw.wait_usage(2)
    assert recs[1]["prompt_tokens"] == 120 and recs[1]["cost_micro"] == P.cost(120, 12)
    fake.set(dialect="glm", status=400, error_body={"error": {
        "code": "1301", "message": "系统检测到输入或生成内容可能包含不安全或敏感内容"}})
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="glm-4.6", messages=MSG)
    assert exc.value.body["code"] == "1301"  # type: ignore[index]
    fake.set(dialect="glm", status=429, error_body={"error": {"code": "1302",
                                                              "message": "并发数过高"}})
    with pytest.raises(openai.APIStatusError) as exc2:
        client.chat.completions.create(model="glm-4.6", messages=MSG)
    assert exc2.value.status_code == 503
    fake.set(dialect="glm", finish_reason="network_error")
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="glm-4.6", messages=MSG)


def test_glm_arrears_fails_over(make_fake: Any, make_inproc: Any) -> None:
    broke, ok = make_fake(dialect="glm", out_of_balance=True), make_fake(dialect="glm")
    gw = make_inproc(fake_config(broke, ok, models={"glm-4.6": {"routes": [
        {"provider": "fake0", "priority": 2}, {"provider": "fake1", "priority": 1}]}}))
    resp = gw.client(gw.key(credit="10")).chat.completions.create(model="glm-4.6", messages=MSG)
    assert resp.choices[0].message.content
    [rec] = gw.wait_usage(1)
    assert json.loads(rec["attempts"])[0]["kind"] == "quota"


def test_ernie(make_fake: Any, make_inproc: Any) -> None:
    usage = {"prompt_tokens": 70, "completion_tokens": 7}
    gw, fake, client = one_route(make_fake, make_inproc, "ernie", model="ernie-4.5",
                                 price=PRICE, usage=usage)
    chunks = list(client.chat.completions.create(model="ernie-4.5", messages=MSG, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    fake.set(dialect="ernie", status=200, error_body=None)
    fake.set(dialect="ernie", out_of_balance=True)  # legacy body, HTTP 200
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="ernie-4.5", messages=MSG)
    assert exc.value.status_code == 503 and "error_code 19" in exc.value.body["message"]  # type: ignore[index]
    [rec, _] = gw.wait_usage(2)
    assert rec["cost_micro"] == P.cost(70, 7)


def test_hunyuan(make_fake: Any, make_inproc: Any) -> None:
    usage = {"prompt_tokens": 40, "completion_tokens": 4}
    gw, fake, client = one_route(make_fake, make_inproc, "hunyuan", model="hunyuan-turbos",
                                 price=PRICE, usage=usage)
    resp = client.chat.completions.create(model="hunyuan-turbos", messages=MSG, temperature=2,
                                          extra_body={"enable_enhancement": False})
    assert resp.choices[0].message.content
    assert fake.requests[-1]["enable_enhancement"] is False
    [rec] = gw.wait_usage(1)
    assert rec["cost_micro"] == P.cost(40, 4)


def test_minimax(make_fake: Any, make_inproc: Any) -> None:
    usage = {"prompt_tokens": 90, "completion_tokens": 30}
    gw, fake, client = one_route(make_fake, make_inproc, "minimax", model="minimax-m2",
                                 price=PRICE, usage=usage, reasoning="thinking hard",
                                 content="The answer.")
    resp = client.chat.completions.create(model="minimax-m2", messages=MSG)
    msg = resp.choices[0].message
    assert msg.content == "The answer." and msg.model_extra["reasoning_content"] == "thinking hard"
    assert "reasoning_details" not in msg.model_extra
    assert fake.requests[-1]["reasoning_split"] is True
    chunks = list(client.chat.completions.create(model="minimax-m2", messages=MSG, stream=True))
    assert text_of(chunks) == "The answer."
    assert any((c.choices[0].delta.model_extra or {}).get("reasoning_content") ==
               "thinking hard" for c in chunks if c.choices)
    # a model that ignores reasoning_split: <think> inside content is split out
    resp = client.chat.completions.create(model="minimax-m2", messages=MSG,
                                          extra_body={"reasoning_split": False})
    assert resp.choices[0].message.content == "The answer."
    assert resp.choices[0].message.model_extra["reasoning_content"] == "thinking hard"
    recs = gw.wait_usage(3)
    assert recs[1]["cost_micro"] == P.cost(90, 30)


def test_doubao(make_fake: Any, make_inproc: Any) -> None:
    usage = {"prompt_tokens": 60, "completion_tokens": 6}
    wrong, right = make_fake(dialect="doubao", usage=usage), make_fake(dialect="doubao",
                                                                       usage=usage)
    gw = make_inproc(fake_config(wrong, right, models={"doubao-pro": {**PRICE, "routes": [
        {"provider": "fake0", "upstream_model": "doubao-pro", "priority": 2},
        {"provider": "fake1", "upstream_model": "doubao-1-5-pro-32k-250115", "priority": 1}]}}))
    key = gw.key(account="root", credit="10")
    gw.account("root", role="admin")
    client = gw.client(key)
    resp = client.chat.completions.create(model="doubao-pro", messages=MSG)
    assert resp.choices[0].message.content
    [rec] = gw.wait_usage(1)
    first = json.loads(rec["attempts"])[0]
    assert first["kind"] == "config" and "InvalidEndpointOrModel.NotFound" in first["error"]
    assert rec["cost_micro"] == P.cost(60, 6)


def test_anthropic(make_fake: Any, make_inproc: Any) -> None:
    usage = {"input_tokens": 25, "output_tokens": 12, "cache_read_input_tokens": 100}
    gw, fake, client = one_route(make_fake, make_inproc, "anthropic", model="claude-x",
                                 upstream="claude-sonnet-4-5",
                                 price={"family": "demo", "context_window": 200000, **PRICE},
                                 usage=usage, content="Hi from Claude")
    resp = client.chat.completions.create(model="claude-x", max_tokens=300, temperature=1.5,
                                          messages=[{"role": "system", "content": "Be brief."},
                                                    {"role": "user", "content": "hello"}])
    assert resp.object == "chat.completion" and resp.choices[0].message.content == \
        "Hi from Claude"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.prompt_tokens == 125
    sent, headers = fake.requests[-1], fake.headers[-1]
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 300
    assert sent["temperature"] == 1.0 and sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert headers["x-api-key"] == "upstream-secret-0" and headers["anthropic-version"]
    chunks = list(client.chat.completions.create(model="claude-x", messages=MSG, stream=True,
                                                 stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert text_of(chunks).strip() == "Hi from Claude"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
    # tools both ways
    fake.set(dialect="anthropic", usage=usage,
             tool_call={"name": "get_weather", "arguments": '{"city": "Paris"}'})
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    resp = client.chat.completions.create(model="claude-x", messages=MSG, tools=tools)
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "city": "Paris"}
    chunks = list(client.chat.completions.create(model="claude-x", messages=MSG, tools=tools,
                                                 stream=True))
    args = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""
                   for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    assert json.loads(args) == {"city": "Paris"}
    fake.set(dialect="anthropic", usage=usage, content="Sunny")
    client.chat.completions.create(model="claude-x", tools=tools, messages=[
        *MSG, {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
    sent = fake.requests[-1]["messages"]
    assert sent[1]["content"][0] == {"type": "tool_use", "id": call.id, "name": "get_weather",
                                     "input": {"city": "Paris"}}
    assert sent[2]["content"][0]["type"] == "tool_result"
    assert fake.requests[-1]["tools"][0]["input_schema"]["properties"] == {
        "city": {"type": "string"}}
    recs = gw.wait_usage(6)
    assert recs[0]["prompt_tokens"] == 125 and recs[0]["cached_tokens"] == 100
    assert recs[0]["cost_micro"] == P.cost(125, 12, 100) == 25 + 10 + 24
    assert recs[1]["prompt_tokens"] == 125 and not recs[1]["usage_estimated"]
