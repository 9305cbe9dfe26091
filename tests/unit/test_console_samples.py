"""The console's code samples are valid code that sends the request shown."""

from __future__ import annotations

import ast
import json
import shlex
import subprocess

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


def test_typescript_sample_runs_under_commonjs() -> None:
    # A default `npm init` project is CommonJS, where top-level await is a SyntaxError. The
    # sample, with the SDK import replaced by a stub, must run there and print the answer.
    stub = ("const OpenAI = class { constructor(o) { this.chat = { completions: { create: "
            "async (b) => b.stream ? (async function* () { yield {choices: [{delta: "
            "{content: 'streamed ' + b.model}}]}; })() : {choices: [{message: "
            "{content: 'answered ' + b.model}}]} } }; } };\n")
    for stream, expected in ((True, "streamed kimi-k2"), (False, "answered kimi-k2")):
        ts = all_samples(SampleRequest(BASE, "kimi-k2", stream=stream))["typescript"]
        assert 'import OpenAI from "openai";' in ts and "npx tsx" in ts
        js = ts.replace('import OpenAI from "openai";', stub)
        out = subprocess.run(["node", "--input-type=commonjs", "-e", js], capture_output=True,
                             text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == expected


def test_codex_sample_is_a_model_provider_for_this_gateway() -> None:
    import tomllib

    doc = tomllib.loads(all_samples(SampleRequest(BASE, "kimi-k2"))["codex"])
    assert doc["model"] == "kimi-k2" and doc["model_provider"] == "smartoken"
    assert doc["model_providers"]["smartoken"] == {
        "name": "SmarToken", "base_url": BASE, "env_key": "SMARTOKEN_API_KEY",
        "wire_api": "responses"}
