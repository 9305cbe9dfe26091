"""The console's code samples are valid code that sends the request shown."""

from __future__ import annotations

import ast
import json
import shlex

from smartoken.console.samples import SampleRequest, all_samples

BASE = "http://gw.example:8000/v1"


def test_samples_send_the_same_request() -> None:
    req = SampleRequest(BASE, "kimi-k2", user="It's \"quoted\" and 中文", system="Be brief",
                        temperature=0.3, max_tokens=64)
    s = all_samples(req)
    words = shlex.split(s["curl"].replace("\\\n", " "))
    assert words[:2] == ["curl", f"{BASE}/chat/completions"]
    body = json.loads(words[words.index("-d") + 1])
    assert body == {"model": "kimi-k2", "temperature": 0.3, "max_tokens": 64, "stream": True,
                    "messages": [{"role": "system", "content": "Be brief"},
                                 {"role": "user", "content": "It's \"quoted\" and 中文"}]}
    tree = ast.parse(s["python"])  # valid Python
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "attr", "") == "create")
    kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert kw == {k: v for k, v in body.items()}
    client = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                  and getattr(n.func, "id", "") == "OpenAI")
    assert {k.arg: getattr(k.value, "value", None) for k in client.keywords}["base_url"] == BASE
    ts = s["typescript"]
    assert f'baseURL: "{BASE}"' in ts and 'model: "kimi-k2"' in ts
    assert "max_tokens: 64" in ts and "temperature: 0.3" in ts and "stream: true" in ts
    assert json.dumps({"role": "user", "content": "It's \"quoted\" and 中文"},
                      ensure_ascii=False) in ts


def test_non_streaming_sample_prints_the_message() -> None:
    s = all_samples(SampleRequest(BASE, "demo", stream=False))
    assert "stream" not in json.loads(shlex.split(s["curl"].replace("\\\n", " "))[-1])
    assert "print(response.choices[0].message.content)" in s["python"]
    ast.parse(s["python"])
