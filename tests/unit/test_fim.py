"""Fill in the middle: which providers have an endpoint, and the request/answer translation."""

from __future__ import annotations

from smartoken.providers import fim


def test_fim_endpoints() -> None:
    assert fim.url("deepseek", "https://api.deepseek.com/v1") == \
        "https://api.deepseek.com/beta/completions"
    assert fim.url("deepseek", "https://api.deepseek.com") == \
        "https://api.deepseek.com/beta/completions"
    assert fim.url("deepseek", "https://api.deepseek.com/beta/") == \
        "https://api.deepseek.com/beta/completions"
    assert fim.url("qwen", "https://dashscope.aliyuncs.com/compatible-mode/v1") == \
        "https://dashscope.aliyuncs.com/compatible-mode/v1/completions"
    assert fim.url("openai", "https://api.openai.com/v1") is None
    assert fim.url("moonshot", "https://api.moonshot.cn/v1") is None


def test_fim_request_and_answers() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "def f("}], "suffix": ")",
            "max_tokens": 9, "thinking": {"type": "disabled"}, "stream": True}
    assert fim.request(body) == {"model": "m", "prompt": "def f(", "suffix": ")",
                                 "max_tokens": 9, "stream": True}
    answer = fim.to_chat({"id": "c", "choices": [{"index": 0, "text": "x", "finish_reason":
                                                  "stop"}], "usage": {"prompt_tokens": 1}})
    assert answer["choices"] == [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "x"}}]
    assert answer["usage"] == {"prompt_tokens": 1} and answer["object"] == "chat.completion"
    chunk = fim.to_chat({"choices": [{"text": "y"}]}, delta=True)
    assert chunk["choices"][0]["delta"] == {"content": "y"}
