"""Copy-ready request samples (cURL, Python, TypeScript) pointing at this gateway."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class SampleRequest:
    base_url: str
    model: str
    user: str = "Explain the best use case for this model."
    system: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool = True
    messages: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # response_format, tools

    def all_messages(self) -> list[dict[str, Any]]:
        if self.messages:
            return self.messages
        out = [{"role": "system", "content": self.system}] if self.system else []
        return [*out, {"role": "user", "content": self.user}]

    def options(self) -> list[tuple[str, object]]:
        opts: list[tuple[str, object]] = []
        if self.temperature is not None:
            opts.append(("temperature", self.temperature))
        if self.max_tokens is not None:
            opts.append(("max_tokens", self.max_tokens))
        opts.extend(self.extra.items())
        if self.stream:
            opts.append(("stream", True))
        return opts


def curl(r: SampleRequest) -> str:
    body: dict[str, object] = {"model": r.model, "messages": r.all_messages(), **dict(r.options())}
    payload = json.dumps(body, indent=2, ensure_ascii=False).replace("'", "'\\''")
    return (f"curl {r.base_url}/chat/completions \\\n"
            f"  -H \"Authorization: Bearer $SMARTOKEN_API_KEY\" \\\n"
            f"  -H \"Content-Type: application/json\" \\\n"
            f"  -d '{payload}'")


def _py(value: object) -> str:
    return repr(value) if not isinstance(value, bool) else str(value)


def python(r: SampleRequest) -> str:
    msgs = ",\n".join(f"        {json.dumps(m, ensure_ascii=False)}" for m in r.all_messages())
    opts = "".join(f"    {k}={_py(v)},\n" for k, v in r.options())
    out = ("import os\n\nfrom openai import OpenAI\n\n"
           "client = OpenAI(\n"
           "    api_key=os.environ[\"SMARTOKEN_API_KEY\"],\n"
           f"    base_url=\"{r.base_url}\",\n)\n\n"
           "response = client.chat.completions.create(\n"
           f"    model=\"{r.model}\",\n"
           f"    messages=[\n{msgs},\n    ],\n{opts})\n")
    if r.stream:
        out += ("for chunk in response:\n"
                "    if chunk.choices:\n"
                "        print(chunk.choices[0].delta.content or \"\", end=\"\", flush=True)\n")
    else:
        out += "print(response.choices[0].message.content)\n"
    return out


def typescript(r: SampleRequest) -> str:
    """No top-level await: it runs as shown in a default ``npm init`` project (CommonJS), with
    tsx, and as an ES module."""
    msgs = ",\n".join(f"      {json.dumps(m, ensure_ascii=False)}" for m in r.all_messages())
    opts = "".join(f"    {k}: {json.dumps(v)},\n" for k, v in r.options())
    out = ("// sample.ts: npm install openai tsx && npx tsx sample.ts\n"
           "import OpenAI from \"openai\";\n\n"
           "const client = new OpenAI({\n"
           "  apiKey: process.env.SMARTOKEN_API_KEY,\n"
           f"  baseURL: \"{r.base_url}\",\n}});\n\n"
           "async function main() {\n"
           "  const response = await client.chat.completions.create({\n"
           f"    model: \"{r.model}\",\n"
           f"    messages: [\n{msgs},\n    ],\n{opts}  }});\n")
    if r.stream:
        out += ("  for await (const chunk of response) {\n"
                "    process.stdout.write(chunk.choices[0]?.delta?.content ?? \"\");\n  }\n")
    else:
        out += "  console.log(response.choices[0].message.content);\n"
    return out + "}\n\nmain();\n"


def codex(r: SampleRequest) -> str:
    """Codex CLI's ``~/.codex/config.toml`` for this gateway (it speaks the Responses API)."""
    return ("# ~/.codex/config.toml, then: export SMARTOKEN_API_KEY=sk-st-…; codex\n"
            f"model = {json.dumps(r.model)}\n"
            "model_provider = \"smartoken\"\n\n"
            "[model_providers.smartoken]\n"
            "name = \"SmarToken\"\n"
            f"base_url = {json.dumps(r.base_url)}\n"
            "env_key = \"SMARTOKEN_API_KEY\"\n"
            "wire_api = \"responses\"\n")


def _root(base_url: str) -> str:
    """The gateway's root: Anthropic's clients add ``/v1/messages`` themselves."""
    return base_url.removesuffix("/v1")


def anthropic_python(r: SampleRequest) -> str:
    """The same request through the ``anthropic`` SDK (``POST /v1/messages``)."""
    msgs = [m for m in r.all_messages() if m["role"] != "system"]
    system = "\n".join(m["content"] for m in r.all_messages() if m["role"] == "system")
    lines = "".join(f"        {json.dumps(m, ensure_ascii=False)},\n" for m in msgs)
    opts = f"    system={json.dumps(system, ensure_ascii=False)},\n" if system else ""
    if r.temperature is not None:
        opts += f"    temperature={_py(r.temperature)},\n"
    head = ("import os\n\nimport anthropic\n\n"
            "client = anthropic.Anthropic(\n"
            "    api_key=os.environ[\"SMARTOKEN_API_KEY\"],\n"
            f"    base_url=\"{_root(r.base_url)}\",\n)\n\n")
    args = (f"    model=\"{r.model}\",\n    max_tokens={r.max_tokens or 1024},\n"
            f"    messages=[\n{lines}    ],\n{opts}")
    if r.stream:
        return head + ("with client.messages.stream(\n" + args + ") as stream:\n"
                       "    for text in stream.text_stream:\n"
                       "        print(text, end=\"\", flush=True)\n")
    return head + ("message = client.messages.create(\n" + args + ")\n"
                   "print(message.content[0].text)\n")


def claude_code(r: SampleRequest) -> str:
    """Claude Code on this gateway (it speaks Anthropic's Messages API)."""
    return ("# npm install -g @anthropic-ai/claude-code\n"
            f"export ANTHROPIC_BASE_URL={json.dumps(_root(r.base_url))}\n"
            "export ANTHROPIC_AUTH_TOKEN=\"$SMARTOKEN_API_KEY\"   # a SmarToken key (sk-st-…)\n"
            f"export ANTHROPIC_MODEL={json.dumps(r.model)}\n"
            f"export ANTHROPIC_DEFAULT_HAIKU_MODEL={json.dumps(r.model)}\n"
            "claude   # or: claude -p \"Explain this repository\"\n")


def all_samples(r: SampleRequest) -> dict[str, str]:
    return {"curl": curl(r), "python": python(r), "typescript": typescript(r),
            "anthropic": anthropic_python(r), "claude_code": claude_code(r),
            "codex": codex(r)}
