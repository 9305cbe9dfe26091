"""Copy-ready request samples (cURL, Python, TypeScript) pointing at this gateway."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(slots=True)
class SampleRequest:
    base_url: str
    model: str
    user: str = "Explain the best use case for this model."
    system: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool = True
    messages: list[dict[str, str]] = field(default_factory=list)

    def all_messages(self) -> list[dict[str, str]]:
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


def all_samples(r: SampleRequest) -> dict[str, str]:
    return {"curl": curl(r), "python": python(r), "typescript": typescript(r),
            "codex": codex(r)}
