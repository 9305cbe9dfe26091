"""Issue 14: each family's thinking switch, mapped from OpenAI's ``reasoning_effort``, and
``reasoning_content`` carried back in tool-call turns, through the OpenAI SDK against the fake
upstream, which refuses what each vendor's docs say it refuses (tests/fakes/dialects.py)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.harness import Gateway, fake_config

MSG = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]
NEW = {"family": "kimi", "context_window": 262144, "input_price": "1", "output_price": "1"}


def _gateway(make_fake: Any, make_inproc: Any, dialect: str,
             models: dict[str, str], **scenario: Any) -> tuple[Gateway, Any, openai.OpenAI]:
    """One fake speaking ``dialect``; ``models`` maps public ids to upstream ids."""
    fake = make_fake(dialect=dialect, **scenario)
    cfg = {m: {"routes": [{"provider": "fake0", "upstream_model": up}]}
           for m, up in models.items()}
    if "kimi-k2.7-code" in models:
        cfg["kimi-k2.7-code"].update(NEW)
    gw = make_inproc(fake_config(fake, models=cfg))
    return gw, fake, gw.client(gw.key(credit="5"))


def _sent(fake: Any) -> dict[str, Any]:
    return dict(fake.requests[-1])


def test_deepseek_effort_and_thinking(make_fake: Any, make_inproc: Any) -> None:
    gw, fake, client = _gateway(make_fake, make_inproc, "deepseek",
                                {"deepseek-v4-pro": "deepseek-v4-pro"})
    client.chat.completions.create(model="deepseek-v4-pro", messages=MSG, reasoning_effort="none")
    body = _sent(fake)
    assert body["thinking"] == {"type": "disabled"} and "reasoning_effort" not in body
    client.chat.completions.create(model="deepseek-v4-pro", messages=MSG, reasoning_effort="high",
                                   extra_body={"vendor_flag": 1})
    body = _sent(fake)
    assert body["thinking"] == {"type": "enabled"} and body["reasoning_effort"] == "high"
    assert body["vendor_flag"] == 1  # unknown fields still pass through
    client.chat.completions.create(model="deepseek-v4-pro", messages=MSG, reasoning_effort="low",
                                   extra_body={"thinking": {"type": "disabled"}})
    assert _sent(fake)["thinking"] == {"type": "disabled"}  # the client's own field wins
    assert len(gw.wait_usage(3)) == 3


@pytest.mark.parametrize(("dialect", "model", "upstream"), [
    ("deepseek", "deepseek-reasoner", "deepseek-flash"),  # thinking enabled by the catalog
    ("glm", "glm-5", "glm-5"),
])
def test_reasoning_content_is_carried_back_in_tool_call_turns(
        make_fake: Any, make_inproc: Any, dialect: str, model: str, upstream: str) -> None:
    gw, fake, client = _gateway(make_fake, make_inproc, dialect, {model: upstream},
                                tool_call={"name": "weather", "arguments": '{"city":"Paris"}'},
                                reasoning="The user wants weather; call the tool.")
    first = client.chat.completions.create(model=model, messages=MSG, tools=TOOLS,
                                           reasoning_effort="medium")
    turn = first.choices[0].message.model_dump(exclude_none=True)
    assert turn["reasoning_content"] == "The user wants weather; call the tool."
    result = {"role": "tool", "tool_call_id": turn["tool_calls"][0]["id"], "content": "21 C"}
    fake.set(dialect=dialect, content="It is 21 C in Paris.")
    second = client.chat.completions.create(model=model, messages=[*MSG, turn, result],
                                            tools=TOOLS)
    assert second.choices[0].message.content == "It is 21 C in Paris."
    sent = _sent(fake)
    assert sent["messages"][1]["reasoning_content"] == turn["reasoning_content"]
    assert "reasoning_effort" not in sent or dialect == "deepseek"
    # A client that drops it gets the vendor's 400 as a 400, recorded as rejected, not a 5xx.
    bare = {k: v for k, v in turn.items() if k != "reasoning_content"}
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=model, messages=[*MSG, bare, result], tools=TOOLS)
    recs = gw.wait_usage(3)
    assert [r["status"] for r in recs] == ["ok", "ok", "rejected"]


def test_glm_and_kimi_k2_switch_thinking(make_fake: Any, make_inproc: Any) -> None:
    for dialect, model in (("glm", "glm-4.6"), ("moonshot", "kimi-k2.6")):
        _, fake, client = _gateway(make_fake, make_inproc, dialect, {model: model})
        client.chat.completions.create(model=model, messages=MSG, reasoning_effort="none")
        body = _sent(fake)
        assert body["thinking"] == {"type": "disabled"} and "reasoning_effort" not in body
        client.chat.completions.create(model=model, messages=MSG, reasoning_effort="low")
        assert _sent(fake)["thinking"] == {"type": "enabled"}


def test_kimi_k3_levels_and_a_model_that_always_thinks(make_fake: Any,
                                                       make_inproc: Any) -> None:
    gw, fake, client = _gateway(make_fake, make_inproc, "moonshot",
                                {"kimi-k3": "kimi-k3", "kimi-k2.7-code": "kimi-k2.7-code"})
    for asked, sent in (("medium", "high"), ("xhigh", "max"), ("none", "low")):
        client.chat.completions.create(model="kimi-k3", messages=MSG, reasoning_effort=asked)
        assert _sent(fake)["reasoning_effort"] == sent
    client.chat.completions.create(model="kimi-k2.7-code", messages=MSG, reasoning_effort="none")
    body = _sent(fake)
    assert "thinking" not in body and "reasoning_effort" not in body
    assert len(gw.wait_usage(4)) == 4


def test_qwen_enable_thinking(make_fake: Any, make_inproc: Any) -> None:
    _, fake, client = _gateway(make_fake, make_inproc, "qwen", {"qwen3-max": "qwen3-max"})
    list(client.chat.completions.create(model="qwen3-max", messages=MSG, stream=True,
                                        reasoning_effort="high"))
    body = _sent(fake)
    assert body["enable_thinking"] is True and "reasoning_effort" not in body
    list(client.chat.completions.create(model="qwen3-max", messages=MSG, stream=True,
                                        reasoning_effort="none"))
    assert _sent(fake)["enable_thinking"] is False
    # non-streaming calls must not think on DashScope, whatever was asked
    client.chat.completions.create(model="qwen3-max", messages=MSG, reasoning_effort="high")
    assert _sent(fake)["enable_thinking"] is False


def test_minimax_gets_its_thinking_back_as_reasoning_details(make_fake: Any,
                                                             make_inproc: Any) -> None:
    _, fake, client = _gateway(make_fake, make_inproc, "minimax", {"minimax-m2.7": "MiniMax-M2.7"},
                               tool_call={"name": "weather", "arguments": '{"city":"Paris"}'},
                               reasoning="Need the weather tool.")
    first = client.chat.completions.create(model="minimax-m2.7", messages=MSG, tools=TOOLS)
    turn = first.choices[0].message.model_dump(exclude_none=True)
    assert turn["reasoning_content"] == "Need the weather tool."
    assert "reasoning_details" not in turn  # the client sees one OpenAI-style field
    result = {"role": "tool", "tool_call_id": turn["tool_calls"][0]["id"], "content": "21 C"}
    fake.set(dialect="minimax", content="21 C.")
    client.chat.completions.create(model="minimax-m2.7", messages=[*MSG, turn, result],
                                   tools=TOOLS)
    back = _sent(fake)["messages"][1]
    assert "reasoning_content" not in back
    assert back["reasoning_details"][0]["text"] == "Need the weather tool."
