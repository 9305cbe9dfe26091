"""Official OpenAI-compatible endpoints of each family (../shared/PROVIDERS.md). The vendor's
model ids come from the catalog (``upstream_id`` in catalog/builtin.yaml).

A preset's route is enabled when its key variable is set in the environment; ``<NAME>_BASE_URL``
overrides the URL (a regional host, a proxy, or a mock upstream in tests).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Preset:
    provider: str  # provider name, also the dialect name
    family: str
    base_url: str
    key_env: str


PRESETS: tuple[Preset, ...] = (
    Preset("deepseek", "deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    Preset("moonshot", "kimi", "https://api.moonshot.cn/v1", "MOONSHOT_API_KEY"),
    Preset("qwen", "qwen", "https://dashscope.aliyuncs.com/compatible-mode/v1",
           "DASHSCOPE_API_KEY"),
    Preset("glm", "glm", "https://open.bigmodel.cn/api/paas/v4", "ZHIPUAI_API_KEY"),
    Preset("doubao", "doubao", "https://ark.cn-beijing.volces.com/api/v3", "ARK_API_KEY"),
    Preset("ernie", "ernie", "https://qianfan.baidubce.com/v2", "QIANFAN_API_KEY"),
    Preset("hunyuan", "hunyuan", "https://api.hunyuan.cloud.tencent.com/v1", "HUNYUAN_API_KEY"),
    Preset("minimax", "minimax", "https://api.minimaxi.com/v1", "MINIMAX_API_KEY"),
    Preset("stepfun", "stepfun", "https://api.stepfun.com/v1", "STEPFUN_API_KEY"),
    Preset("baichuan", "baichuan", "https://api.baichuan-ai.com/v1", "BAICHUAN_API_KEY"),
    Preset("spark", "spark", "https://spark-api-open.xf-yun.com/v1", "SPARK_API_KEY"),
    Preset("sensenova", "sensenova", "https://api.sensenova.cn/compatible-mode/v1",
           "SENSENOVA_API_KEY"),
    Preset("pangu", "pangu", "https://api.modelarts-maas.com/v1", "PANGU_API_KEY"),
    Preset("zhinao", "zhinao", "https://api.360.cn/v1", "ZHINAO_API_KEY"),
    Preset("yi", "yi", "https://api.lingyiwanwu.com/v1", "YI_API_KEY"),
    Preset("internlm", "internlm", "https://chat.intern-ai.org.cn/api/v1", "INTERNLM_API_KEY"),
    Preset("longcat", "longcat", "https://api.longcat.chat/openai/v1", "LONGCAT_API_KEY"),
)


def base_url_env(preset: Preset) -> str:
    return preset.key_env.removesuffix("_API_KEY") + "_BASE_URL"
