"""docs/api.md from the OpenAPI document: the API reference is generated, never edited.

``python -m smartoken.api.openapi.markdown docs/api.md`` (``make docs``) rewrites it;
``tests/integration/test_docs.py`` fails when the file and the document disagree.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from smartoken.api.openapi import document
from smartoken.api.openapi.common import JSON

METHODS = ("get", "post", "put", "patch", "delete")
HEADER = ("# API reference\n\nGenerated from the gateway's OpenAPI document (`GET /openapi.json`) "
          "by `make docs`; do not edit by hand.\n")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _type(schema: Mapping[str, object]) -> str:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for combo in ("oneOf", "anyOf", "allOf"):
        options = schema.get(combo)
        if isinstance(options, Sequence):
            return " or ".join(_type(o) for o in options if isinstance(o, Mapping))
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = " or ".join(str(k) for k in kind)
    if kind == "array":
        items = schema.get("items")
        return f"array of {_type(items)}" if isinstance(items, Mapping) else "array"
    enum = schema.get("enum")
    if isinstance(enum, Sequence) and not isinstance(enum, str):
        return f"{kind}: " + ", ".join(f"`{v}`" for v in enum)
    return str(kind)


def _content(part: Mapping[str, JSON]) -> str:
    return "; ".join(f"`{ct}` {_type(c.get('schema', {}))}"
                     for ct, c in part.get("content", {}).items())


def _operation(path: str, method: str, op: JSON) -> list[str]:
    out = [f"### `{method.upper()} {path}`", ""]
    for key in ("summary", "description"):
        if op.get(key):
            out += [str(op[key]), ""]
    if op.get("security"):
        schemes = ", ".join(name for item in op["security"] for name in item)
        out += [f"Credential: {schemes}.", ""]
    params = op.get("parameters") or []
    if params:
        out += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            required = "yes" if p.get("required") else "no"
            out.append(f"| `{p['name']}` | {p['in']} | {_cell(_type(p.get('schema', {})))} | "
                       f"{required} | {_cell(p.get('description', ''))} |")
        out.append("")
    body = op.get("requestBody")
    if isinstance(body, Mapping):
        out += [f"Body: {_content(body)}.", ""]
    out += ["| status | meaning | body |", "|---|---|---|"]
    for status, resp in (op.get("responses") or {}).items():
        meaning = _cell(resp.get("description", ""))
        out.append(f"| {status} | {meaning} | {_cell(_content(resp))} |")
    return [*out, ""]


def _schema(name: str, schema: Mapping[str, JSON]) -> list[str]:
    out = [f"### {name}", ""]
    if schema.get("description"):
        out += [str(schema["description"]), ""]
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        return [*out, f"Type: {_cell(_type(schema))}.", ""]
    required = set(schema.get("required") or [])
    out += ["| field | type | required | description |", "|---|---|---|---|"]
    for field, sub in props.items():
        out.append(f"| `{field}` | {_cell(_type(sub))} | {'yes' if field in required else 'no'} | "
                   f"{_cell(sub.get('description', ''))} |")
    return [*out, ""]


def render(doc: Mapping[str, JSON]) -> str:
    out = [HEADER, str(doc["info"].get("description", "")), "", "## Endpoints", ""]
    for path in sorted(doc["paths"]):
        for method in METHODS:
            op = doc["paths"][path].get(method)
            if op is not None:
                out += _operation(path, method, op)
    out += ["## Schemas", ""]
    schemas = doc["components"]["schemas"]
    for name in sorted(schemas):
        out += _schema(name, schemas[name])
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str]) -> int:
    text = render(document())
    if len(argv) > 1:
        Path(argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
