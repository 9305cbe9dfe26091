"""Issue 14: a provider stored through /admin/providers is built by the same factory as one in
the YAML file, so its dialect's transport (auth header, wire format) is the one that is used."""

from __future__ import annotations

from typing import Any

import httpx

from smartoken.auth.secretbox import generate_key

MASTER = "master-key-Zq8vTq2LmWc"
STORED_KEY = "stored-anthropic-key-Lq2Vd"


def test_stored_anthropic_provider_speaks_anthropic(make_fake: Any, make_inproc: Any) -> None:
    usage = {"input_tokens": 9, "output_tokens": 4}
    fake = make_fake(dialect="anthropic", usage=usage, content="Hi from Claude")
    gw = make_inproc(None, env={"SMARTOKEN_MASTER_KEY": MASTER,
                                      "SMARTOKEN_SECRET_KEY": generate_key()})
    r = httpx.post(gw.base_url + "/admin/providers", timeout=15,
                   headers={"authorization": f"Bearer {MASTER}"},
                   json={"name": "claude", "dialect": "anthropic", "base_url": fake.base_url,
                         "api_key": STORED_KEY,
                         "routes": [{"model": "kimi-k2", "upstream_model": "claude-x",
                                     "priority": 100}]})
    assert r.status_code == 201, r.text
    client = gw.client(gw.key(credit="10"))
    resp = client.chat.completions.create(model="kimi-k2", max_tokens=50,
                                          messages=[{"role": "user", "content": "hello"}])
    assert resp.choices[0].message.content == "Hi from Claude"
    assert resp.usage is not None and resp.usage.prompt_tokens == 9
    sent, headers = fake.requests[-1], fake.headers[-1]
    assert sent["model"] == "claude-x" and sent["max_tokens"] == 50
    assert headers["x-api-key"] == STORED_KEY and "Authorization" not in headers
    chunks = list(client.chat.completions.create(
        model="kimi-k2", messages=[{"role": "user", "content": "hello"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() \
        == "Hi from Claude"
    [first, second] = gw.wait_usage(2)
    assert first["provider"] == "claude" and first["status"] == "ok" and second["status"] == "ok"
