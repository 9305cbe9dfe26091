"""What each family's upstream does differently, for the fake upstream (``dialect`` switch).

Each function answers for one dialect and returns None (or the OpenAI default) for the others,
so ``tests/fakes/upstream.py`` stays one server with a few hooks. Facts from
../shared/PROVIDERS.md and the vendors' docs.
"""

from __future__ import annotations

import re
from typing import Any

JSON = dict[str, Any]
DATED = re.compile(r"^(ep-|.+-\d{6}$)")


def _err(status: int, body: JSON) -> tuple[int, JSON]:
    return status, body


def _bad(message: str) -> tuple[int, JSON]:
    return _err(400, {"error": {"message": message, "type": "invalid_request_error"}})


def _tool_turns(body: JSON) -> list[JSON]:
    return [m for m in body.get("messages", [])
            if isinstance(m, dict) and m.get("role") == "assistant" and m.get("tool_calls")]


def check_thinking(dialect: str, body: JSON) -> tuple[int, JSON] | None:
    """The thinking switches as each vendor's docs define them (thinking_mode guides)."""
    model = str(body.get("model", ""))
    thinking = body.get("thinking")
    off = isinstance(thinking, dict) and thinking.get("type") == "disabled"
    if dialect == "deepseek" and "reasoner" not in model:
        if body.get("reasoning_effort") not in (None, "minimal", "low", "medium", "high",
                                                "xhigh", "max", "ultra"):
            return _bad("reasoning_effort must be low, high or max")
        if not off and any("reasoning_content" not in m for m in _tool_turns(body)):
            return _bad("The reasoning_content in the thinking mode must be passed back to "
                        "the API.")
    if dialect == "glm":
        if "reasoning_effort" in body:
            return _bad("unknown parameter reasoning_effort")  # stands for "not translated"
        if not off and any("reasoning_content" not in m for m in _tool_turns(body)):
            return _bad("interleaved thinking: return reasoning_content with tool results")
    if dialect == "moonshot":
        if model.startswith("kimi-k3") and body.get("reasoning_effort") not in (
                None, "low", "high", "max"):
            return _bad("reasoning_effort must be low, high or max")
        if model.startswith("kimi-k2.7-code") and off:
            return _bad("thinking cannot be disabled for this model")
    if dialect == "minimax" and body.get("reasoning_split") and any(
            "reasoning_details" not in m for m in _tool_turns(body)):
        return _bad("send the whole assistant message back, reasoning_details included")
    return None


def check_request(dialect: str, body: JSON, stream: bool) -> tuple[int, JSON] | None:
    """Reject what the vendor rejects, so a test proves the gateway's dialect avoided it."""
    bad = check_thinking(dialect, body)
    if bad is not None:
        return bad
    t = body.get("temperature")
    if dialect == "moonshot":
        if isinstance(t, int | float) and not 0 <= t <= 1:
            return _err(400, {"error": {"message": "temperature must be in [0, 1]",
                                        "type": "invalid_request_error"}})
        n = body.get("n") or 1
        if n > 5 or (n > 1 and isinstance(t, int | float) and t < 0.01):
            return _err(400, {"error": {"message": "invalid n", "type": "invalid_request_error"}})
    if dialect == "qwen" and not stream and body.get("enable_thinking") is not False:
        return _err(400, {"error": {"message": "parameter.enable_thinking must be set to false "
                                    "for non-streaming calls", "type": "invalid_request_error",
                                    "code": "invalid_parameter_error"},
                          "request_id": "qwen-req-1"})
    if dialect == "doubao" and not DATED.match(str(body.get("model", ""))):
        return _err(404, {"error": {"code": "InvalidEndpointOrModel.NotFound", "message":
                                    "The model or endpoint does not exist or you do not have "
                                    "access to it.", "type": "NotFound"}})
    if dialect == "hunyuan" and isinstance(t, int | float) and not 0 <= t <= 2:
        return _err(400, {"error": {"message": "temperature out of range",
                                    "type": "invalid_request_error"}})
    if dialect == "deepseek" and "reasoner" in str(body.get("model")) and (
            body.get("logprobs") or any("reasoning_content" in m and not m.get("tool_calls")
                                        for m in body.get("messages", []))):
        return _err(400, {"error": {"message": "reasoner rejects this input",
                                    "type": "invalid_request_error"}})
    if dialect == "minimax" and stream is False and body.get("reasoning_split") is None:
        return None
    return None


def out_of_balance(dialect: str) -> tuple[int, JSON]:
    """The vendor's answer when the route's own account has no money left."""
    if dialect == "moonshot":
        return _err(429, {"error": {"message": "Your account is suspended, please check your "
                                    "plan and billing details",
                                    "type": "exceeded_current_quota_error"}})
    if dialect == "deepseek":
        return _err(402, {"error": {"message": "Insufficient Balance", "type": "unknown_error",
                                    "param": None, "code": "invalid_request_error"}})
    if dialect == "glm":
        return _err(429, {"error": {"code": "1113", "message": "您的账户已欠费，请充值后重试。"}})
    if dialect == "ernie":
        return _err(200, {"error_code": 19, "error_msg": "Open api total request limit reached"})
    if dialect == "anthropic":
        return _err(400, {"type": "error", "error": {
            "type": "invalid_request_error",
            "message": "Your credit balance is too low to access the Anthropic API."}})
    return _err(429, {"error": {"message": "You exceeded your current quota",
                                "type": "insufficient_quota", "code": "insufficient_quota"}})


def reasoning_fields(dialect: str, body: JSON, reasoning: str) -> JSON:
    """Where the vendor puts reasoning in a message or delta."""
    if dialect == "minimax":
        if body.get("reasoning_split"):
            return {"reasoning_details": [{"type": "reasoning.text", "id": "r1",
                                           "text": reasoning}]}
        return {}
    return {"reasoning_content": reasoning}


def content_with_reasoning(dialect: str, body: JSON, text: str, reasoning: str | None) -> str:
    if dialect == "minimax" and reasoning and not body.get("reasoning_split"):
        return f"<think>\n{reasoning}\n</think>\n\n{text}"
    return text


def final_chunks(dialect: str, head: JSON, finish: JSON, usage: JSON,
                 want_usage: bool) -> list[JSON]:
    """The end of a stream, with usage where the vendor puts it."""
    if dialect == "moonshot":
        finish["choices"][0]["usage"] = usage
        return [finish]
    if dialect == "moonshot-both":  # some versions repeat it at top level: same value
        finish["choices"][0]["usage"] = usage
        finish["usage"] = usage
        return [finish]
    if dialect == "openai" and not want_usage:
        return [finish]
    if dialect in ("glm", "ernie", "hunyuan", "doubao", "minimax"):
        finish["usage"] = usage
        return [finish]
    # qwen, deepseek, openai with include_usage: a final choices-empty chunk
    return [finish, {**head, "choices": [], "usage": usage}]
