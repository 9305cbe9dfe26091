"""Chat Completions stream chunks → the Responses API's typed stream events.

The sequence for one answer::

    response.created, response.in_progress,
    [reasoning]  response.output_item.added, response.reasoning_summary_part.added,
                 response.reasoning_summary_text.delta…, response.reasoning_summary_text.done,
                 response.reasoning_summary_part.done, response.output_item.done
    [text]       response.output_item.added, response.content_part.added,
                 response.output_text.delta…, response.output_text.done,
                 response.content_part.done, response.output_item.done
    [each call]  response.output_item.added, response.function_call_arguments.delta…,
                 response.function_call_arguments.done, response.output_item.done
    response.completed (or response.incomplete) with usage

A failure after the first byte ends the stream with an ``error`` event and ``response.failed``.
Every event carries ``type`` and an increasing ``sequence_number``, framed as
``event: <type>`` + ``data: <json>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from smartoken.errors import GatewayError
from smartoken.protocols.responses import (
    JSON,
    ResponsesRequest,
    call_item,
    message_item,
    new_id,
    reasoning_item,
    response_object,
    status_of,
)
from smartoken.providers.base import Usage


def usage_json(u: Usage) -> JSON:
    """The relay's usage (what is billed) in the Responses shape."""
    return {"input_tokens": u.prompt_tokens,
            "input_tokens_details": {"cached_tokens": u.cached_tokens},
            "output_tokens": u.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "total_tokens": u.prompt_tokens + u.completion_tokens}


class ResponsesEvents:
    """Turns chat chunks into Responses events; ``output`` holds the finished items. Frames one
    streamed answer for the relay (``chunk``, ``end``, ``fail``); ``on_done`` gets the final
    response object of a stream that finished (to store it)."""

    def __init__(self, req: ResponsesRequest, response_id: str, created_at: int,
                 on_done: Callable[[JSON], None] | None = None) -> None:
        self.req, self.id, self.created_at = req, response_id, created_at
        self.on_done = on_done
        self.started = False
        self.seq = 0
        self.output: list[JSON] = []
        self.open: JSON | None = None  # the item being streamed
        self.text: list[str] = []  # of the open item
        self.call_index: int | None = None
        self.finish_reason: Any = None

    # -------------------------------------------------------------- framing

    def _event(self, kind: str, payload: JSON) -> bytes:
        payload = {"type": kind, "sequence_number": self.seq, **payload}
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def _response(self, status: str, usage: JSON | None = None, incomplete: JSON | None = None,
                  error: JSON | None = None) -> JSON:
        return response_object(self.req, self.id, self.created_at, list(self.output), status,
                                usage, incomplete, error)

    def start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        resp = self._response("in_progress")
        return (self._event("response.created", {"response": resp})
                + self._event("response.in_progress", {"response": resp}))

    # -------------------------------------------------------------- items

    def _text_delta(self, content: str) -> bytes:
        """``response.output_text.delta``, framed by hand: the hot path of a streamed answer
        (the same bytes ``_event`` would write)."""
        assert self.open is not None
        seq = self.seq
        self.seq += 1
        return (b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta"'
                b',"sequence_number":' + str(seq).encode() + b',"item_id":'
                + orjson.dumps(self.open["id"]) + b',"output_index":'
                + str(len(self.output)).encode() + b',"content_index":0,"delta":'
                + orjson.dumps(content) + b',"logprobs":[]}\n\n')

    def _where(self) -> JSON:
        assert self.open is not None
        return {"item_id": self.open["id"], "output_index": len(self.output)}

    def _open(self, item: JSON) -> bytes:
        out = self._close()
        self.open, self.text = item, []
        shown = {k: v for k, v in item.items() if not k.startswith("_")}
        out += self._event("response.output_item.added",
                           {"output_index": len(self.output), "item": shown})
        if item["type"] == "reasoning":
            out += self._event("response.reasoning_summary_part.added", {
                **self._where(), "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}})
        elif item["type"] == "message":
            out += self._event("response.content_part.added", {
                **self._where(), "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
        return out

    def _close(self) -> bytes:
        item = self.open
        if item is None:
            return b""
        text = "".join(self.text)
        where = self._where()
        out = b""
        if item["type"] == "reasoning":
            done = reasoning_item(self.req, text, item["id"])
            part = {"type": "summary_text", "text": text}
            out += self._event("response.reasoning_summary_text.done",
                               {**where, "summary_index": 0, "text": text})
            out += self._event("response.reasoning_summary_part.done",
                               {**where, "summary_index": 0, "part": part})
        elif item["type"] == "message":
            done = message_item(text, item["id"])
            out += self._event("response.output_text.done",
                               {**where, "content_index": 0, "text": text, "logprobs": []})
            out += self._event("response.content_part.done",
                               {**where, "content_index": 0, "part": done["content"][0]})
        else:
            done = call_item(self.req, item["call_id"], item["_chat_name"], text, item["id"])
            if done["type"] == "function_call":
                out += self._event("response.function_call_arguments.done",
                                   {**where, "name": done["name"], "arguments": text})
        out += self._event("response.output_item.done",
                           {"output_index": len(self.output), "item": done})
        self.output.append(done)
        self.open, self.text, self.call_index = None, [], None
        return out

    def chunk(self, chunk: JSON) -> bytes | None:
        """The events for one chat chunk (None when it carries nothing to show)."""
        out = self.start()
        choices = chunk.get("choices") or ()
        choice = choices[0] if choices and isinstance(choices[0], dict) else None
        if choice is None:
            return out or None
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            if self.open is None or self.open["type"] != "reasoning":
                out += self._open({"type": "reasoning", "id": new_id("rs"), "summary": []})
            self.text.append(reasoning)
            out += self._event("response.reasoning_summary_text.delta",
                               {**self._where(), "summary_index": 0, "delta": reasoning})
        content = delta.get("content")
        if isinstance(content, str) and content:
            if self.open is None or self.open["type"] != "message":
                out += self._open({"type": "message", "id": new_id("msg"),
                                   "status": "in_progress", "role": "assistant", "content": []})
            self.text.append(content)
            out += self._text_delta(content)
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, dict):
                continue
            fn = call.get("function") or {}
            index = call.get("index", 0)
            if self.call_index != index or self.open is None:
                name = str(fn.get("name") or "")
                item = call_item(self.req, str(call.get("id") or new_id("call")), name, "",
                                 status="in_progress")
                item["_chat_name"] = name
                out += self._open(item)
                self.call_index = index
            args = fn.get("arguments")
            if isinstance(args, str) and args:
                self.text.append(args)
                if self.open is not None and self.open["type"] == "function_call":
                    out += self._event("response.function_call_arguments.delta",
                                       {**self._where(), "delta": args})
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        return out or None

    def end(self, usage: Usage) -> bytes:
        """Close the open item and send ``response.completed`` (or ``response.incomplete``)
        with the usage that is billed."""
        out = self.start() + self._close()
        status, incomplete = status_of(self.finish_reason)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        resp = self._response(status, usage_json(usage), incomplete)
        if self.on_done is not None:
            self.on_done(resp)
        return out + self._event(kind, {"response": resp})

    def fail(self, err: GatewayError, usage: Usage) -> bytes:
        """A failure after the stream started: an ``error`` event, then ``response.failed``
        (the open item is left unfinished; ``usage`` is what is billed for it)."""
        self.open = None
        code = err.code or err.type
        out = self.start() + self._event("error", {"code": code, "message": err.message,
                                                   "param": err.param})
        resp = self._response("failed", usage_json(usage),
                              error={"code": code, "message": err.message})
        return out + self._event("response.failed", {"response": resp})
