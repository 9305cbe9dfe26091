"""Each family's deviations from OpenAI, one module per family (registered in ``DIALECTS``).

Families that speak plain OpenAI (StepFun, Baichuan, Spark, Yi, SenseNova, Pangu, 360 Zhinao,
InternLM, LongCat) use the base dialect.
"""

from __future__ import annotations

from smartoken.providers.dialects.anthropic import AnthropicDialect
from smartoken.providers.dialects.base import Dialect
from smartoken.providers.dialects.deepseek import DeepSeekDialect
from smartoken.providers.dialects.doubao import DoubaoDialect
from smartoken.providers.dialects.ernie import ErnieDialect
from smartoken.providers.dialects.glm import GLMDialect
from smartoken.providers.dialects.hunyuan import HunyuanDialect
from smartoken.providers.dialects.minimax import MiniMaxDialect
from smartoken.providers.dialects.moonshot import MoonshotDialect
from smartoken.providers.dialects.qwen import QwenDialect

DIALECTS: dict[str, type[Dialect]] = {
    d.name: d for d in (MoonshotDialect, DeepSeekDialect, QwenDialect, GLMDialect, ErnieDialect,
                        HunyuanDialect, MiniMaxDialect, DoubaoDialect, AnthropicDialect)
}


def get_dialect(name: str) -> Dialect:
    return DIALECTS.get(name, Dialect)()
