"""Context fit: checked before any upstream call; ``auto`` picks the smallest variant that fits;
context-window fallbacks; a 2M-token (8 MB) request accepted, counted and relayed."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from bench.context import document
from smartoken import tokens
from tests.harness import fake_config


def test_over_long_prompt_refused_without_calling_upstream(make_fake: Any,
                                                           make_inproc: Any) -> None:
    fake = make_fake()
    gw = make_inproc(fake_config(fake, models={"moonshot-v1-8k": {"routes": [
        {"provider": "fake0"}]}}))
    client = gw.client(gw.key(credit="10"))
    long_text = document(0.05)  # ~12K tokens: over 8K
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="moonshot-v1-8k",
                                       messages=[{"role": "user", "content": long_text}])
    err = exc.value.body
    assert err["code"] == "context_length_exceeded" and "8192" in err["message"]  # type: ignore[index]
    # large prompts (sampled estimate first) are refused with the exact count
    huge = document(0.5)
    with pytest.raises(openai.BadRequestError) as exc2:
        client.chat.completions.create(model="moonshot-v1-8k",
                                       messages=[{"role": "user", "content": huge}])
    exact = tokens.count_messages([{"role": "user", "content": huge}])
    assert f"resulted in {exact} tokens" in exc2.value.body["message"]  # type: ignore[index]
    assert fake.requests == [] and gw.usage() == []


def test_auto_picks_the_smallest_variant_that_fits(make_fake: Any, make_inproc: Any) -> None:
    fake = make_fake()
    models = {f"moonshot-v1-{v}": {"routes": [{"provider": "fake0",
                                               "upstream_model": f"moonshot-v1-{v}"}]}
              for v in ("8k", "32k", "128k")}
    gw = make_inproc(fake_config(fake, models=models))
    client = gw.client(gw.key(credit="50"))
    for text, wanted, expected in (("hi", 100, "moonshot-v1-8k"),
                                   (document(0.05), 100, "moonshot-v1-32k"),
                                   ("hi", 20_000, "moonshot-v1-32k"),
                                   (document(0.2), 100, "moonshot-v1-128k")):
        resp = client.chat.completions.create(model="moonshot-v1-auto", max_tokens=wanted,
                                              messages=[{"role": "user", "content": text}])
        assert resp.model == "moonshot-v1-auto"
        assert fake.requests[-1]["model"] == expected, (len(text), wanted)
    recs = gw.wait_usage(4)
    assert [r["model"] for r in recs] == ["moonshot-v1-8k", "moonshot-v1-32k",
                                          "moonshot-v1-32k", "moonshot-v1-128k"]


def test_context_window_fallback_to_a_larger_model(make_fake: Any, make_inproc: Any) -> None:
    small, big = make_fake(content="small"), make_fake(content="big")
    gw = make_inproc(fake_config(small, big, models={
        "moonshot-v1-8k": {"context_fallbacks": ["moonshot-v1-128k"],
                           "routes": [{"provider": "fake0"}]},
        "moonshot-v1-128k": {"routes": [{"provider": "fake1"}]}}))
    client = gw.client(gw.key(credit="10"))
    assert client.chat.completions.create(model="moonshot-v1-8k", messages=[
        {"role": "user", "content": "hi"}]).choices[0].message.content == "small"
    resp = client.chat.completions.create(model="moonshot-v1-8k", messages=[
        {"role": "user", "content": document(0.05)}])
    assert resp.choices[0].message.content == "big" and resp.model == "moonshot-v1-8k"
    recs = gw.wait_usage(2)
    assert recs[1]["model"] == "moonshot-v1-128k" and recs[1]["requested_model"] == \
        "moonshot-v1-8k"


def test_two_million_token_request_is_accepted_and_relayed(make_fake: Any,
                                                           make_inproc: Any) -> None:
    fake = make_fake(content="read it all", usage={"prompt_tokens": 1_900_000,
                                                   "completion_tokens": 3})
    gw = make_inproc(fake_config(fake, models={"moonshot-v1-2m": {"routes": [
        {"provider": "fake0"}]}}))
    text = document(8)
    client = gw.client(gw.key(credit="100"), timeout=120)
    resp = client.chat.completions.create(model="moonshot-v1-2m", max_tokens=16,
                                          messages=[{"role": "user", "content": text}])
    assert resp.choices[0].message.content == "read it all"
    assert fake.requests[-1]["messages"][0]["content"] == text
    [rec] = gw.wait_usage(1)
    assert rec["prompt_tokens"] == 1_900_000 and rec["status"] == "ok"
