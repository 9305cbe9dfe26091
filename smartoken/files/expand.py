"""Files in chat: replace file references in a chat request by the files' extracted text.

Two shapes reach the gateway:

* OpenAI's content part ``{"type": "file", "file": {"file_id": "file-…"}}`` in any message.
  The part becomes ``{"type": "text", "text": "<file name=…>…</file>"}``; a message whose
  parts are then all text is collapsed to a plain string, which every upstream accepts.
* Moonshot's pattern: a system message whose content is the text returned by
  ``GET /v1/files/{id}/content``. It is already text; nothing needs expanding.

``prepare`` calls ``expand_files`` before counting tokens, so the expanded prompt is what is
counted, context-checked, reserved, sent and billed. An unknown or foreign file id is a 404
and a file with no text (purpose ``batch``) a 400, both before anything is reserved.
Parts carrying inline ``file_data`` (base64) and no ``file_id`` are left alone here and refused
when the prompt is sized (``smartoken/media.py``: their cost cannot be bounded).
"""

from __future__ import annotations

from typing import Any

from smartoken.errors import InvalidRequest
from smartoken.files.records import get_many
from smartoken.files.service import Files, file_not_found

JSON = dict[str, Any]


def _file_refs(messages: list[Any]) -> list[tuple[int, int, str]]:
    refs = []
    for i, m in enumerate(messages):
        content = m.get("content") if isinstance(m, dict) else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "file":
                continue
            spec = part.get("file")
            where = f"messages[{i}].content[{j}].file"
            if not isinstance(spec, dict):
                raise InvalidRequest(f"Invalid content part: '{where}' must be an object with "
                                     "a 'file_id'.", param=where, code="invalid_type")
            file_id = spec.get("file_id")
            if file_id is None and "file_data" in spec:
                continue
            if not isinstance(file_id, str) or not file_id:
                raise InvalidRequest(f"Missing required parameter: '{where}.file_id'.",
                                     param=f"{where}.file_id",
                                     code="missing_required_parameter")
            refs.append((i, j, file_id))
    return refs


def render(filename: str, text: str) -> str:
    safe = filename.replace('"', "'")
    return f'<file name="{safe}">\n{text}\n</file>'


async def expand_files(engine: Any, files: Files | None, account_id: int, data: JSON) -> JSON:
    """``data`` with file parts replaced by text; ``data`` itself when it references none."""
    messages = data.get("messages")
    if not isinstance(messages, list):
        return data
    refs = _file_refs(messages)
    if not refs:
        return data
    if files is None:
        raise InvalidRequest("The Files API is not enabled on this gateway.",
                             code="files_unavailable")
    rows = await get_many(engine, account_id, (r[2] for r in refs))
    texts: dict[str, str] = {}
    for i, j, file_id in refs:
        row = rows.get(file_id)
        where = f"messages[{i}].content[{j}].file.file_id"
        if row is None:
            raise file_not_found(file_id, param=where)
        if file_id not in texts:
            if row.text_sha256 is None:
                raise InvalidRequest(f"The file '{file_id}' (purpose '{row.purpose}') has no "
                                     "text to put in a chat.", param=where,
                                     code="file_has_no_text")
            texts[file_id] = render(row.filename, await files.text(row))
    out = list(messages)
    touched = {i for i, _, _ in refs}
    for i in touched:
        parts = []
        for part in messages[i]["content"]:
            if isinstance(part, dict) and part.get("type") == "file":
                fid = (part.get("file") or {}).get("file_id")
                if fid in texts:
                    part = {"type": "text", "text": texts[fid]}
            parts.append(part)
        msg = dict(messages[i])
        if all(p.get("type") == "text" for p in parts):
            msg["content"] = "\n\n".join(p.get("text", "") for p in parts)
        else:
            msg["content"] = parts
        out[i] = msg
    return {**data, "messages": out}
