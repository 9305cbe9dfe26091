"""The built-in catalog: every family of the seed comparison table and Kimi's context variants.

Prices are USD per 1M tokens, from ../shared/seeds (the SmarToken Kimi page's comparison table
and the Kimi long-context guide). Ratings are out of 5.
"""

from __future__ import annotations

from smartoken.catalog.model import Catalog, Family, ModelSpec
from smartoken.money import Price, parse_usd

K = 1024

# slug, name, vendor, context, input $/1M, output $/1M, reasoning, coding, best for, model ids
FAMILIES: tuple[tuple[str, str, str, int, str, str, int, int, str, tuple[str, ...]], ...] = (
    ("deepseek", "DeepSeek", "DeepSeek", 128 * K, "0.50", "1.50", 5, 5,
     "Reasoning, coding, research", ("deepseek-chat", "deepseek-reasoner")),
    ("kimi", "Kimi", "Moonshot AI", 256 * K, "0.60", "2.50", 4, 4,
     "Long context, agents, research", ("kimi-k2",)),
    ("qwen", "Qwen", "Alibaba Cloud", 128 * K, "1.20", "4.80", 4, 4,
     "Multilingual apps, structured output", ("qwen-plus",)),
    ("glm", "GLM", "Zhipu AI", 128 * K, "0.80", "3.20", 4, 4,
     "Enterprise tools, business workflows", ("glm-4.6",)),
    ("doubao", "Doubao", "ByteDance Volcengine", 128 * K, "0.70", "2.80", 3, 3,
     "Consumer chat, content workflows", ("doubao-pro",)),
    ("ernie", "ERNIE", "Baidu", 128 * K, "0.90", "3.60", 4, 3,
     "Chinese knowledge, enterprise search", ("ernie-4.5",)),
    ("hunyuan", "Hunyuan", "Tencent", 128 * K, "0.80", "3.20", 4, 4,
     "Enterprise assistants, Tencent Cloud routes", ("hunyuan-turbos",)),
    ("minimax", "MiniMax", "MiniMax", 128 * K, "0.30", "1.20", 4, 5,
     "Coding agents, developer automation", ("minimax-m2",)),
    ("stepfun", "StepFun", "StepFun", 128 * K, "0.50", "2.00", 4, 4,
     "Coding tools, planning agents", ("step-2",)),
    ("baichuan", "Baichuan", "Baichuan AI", 32 * K, "1.50", "1.50", 4, 3,
     "Domain QA, bilingual writing", ("baichuan4",)),
    ("spark", "Spark", "iFlytek", 64 * K, "0.70", "2.80", 4, 4,
     "Chinese reasoning, education", ("spark-4.0-ultra",)),
    ("sensenova", "SenseNova", "SenseTime", 128 * K, "0.80", "3.20", 4, 3,
     "Multimodal enterprise workflows", ("sensenova-v6",)),
    ("pangu", "Pangu", "Huawei Cloud", 32 * K, "1.00", "4.00", 4, 3,
     "Industry NLP, private routes", ("pangu-pro",)),
    ("zhinao", "360 Zhinao", "360", 32 * K, "0.40", "1.00", 4, 3,
     "Security assistants, Chinese QA", ("360gpt-pro",)),
    ("yi", "Yi", "01.AI", 32 * K, "0.90", "0.90", 4, 4,
     "Bilingual writing, structured output", ("yi-large",)),
    ("internlm", "InternLM", "Shanghai AI Lab", 200 * K, "0.20", "0.80", 4, 4,
     "Self-hosted evals, research", ("internlm3",)),
    ("longcat", "LongCat", "Meituan", 128 * K, "0.40", "1.60", 4, 4,
     "Open model evals, multimodal prototypes", ("longcat-flash-chat",)),
)

# Kimi's context variants (the long-context guide): id, context, input $/1M, output $/1M.
MOONSHOT_VARIANTS: tuple[tuple[str, int, str, str], ...] = (
    ("moonshot-v1-8k", 8 * K, "0.60", "1.20"),
    ("moonshot-v1-32k", 32 * K, "1.20", "2.40"),
    ("moonshot-v1-128k", 128 * K, "2.40", "4.80"),
    ("moonshot-v1-256k", 256 * K, "3.00", "6.00"),
    ("moonshot-v1-512k", 512 * K, "3.60", "7.20"),
    ("moonshot-v1-1m", 1024 * K, "4.80", "9.60"),
    ("moonshot-v1-2m", 2048 * K, "6.00", "12.00"),
)

DEFAULT_MAX_OUTPUT = 8192
DEMO_MODEL_ID = "demo"


def _max_output(context: int) -> int:
    return min(DEFAULT_MAX_OUTPUT, max(context // 4, 256))


def builtin_catalog() -> Catalog:
    catalog = Catalog()
    for slug, name, vendor, ctx, inp, out, reasoning, coding, best_for, ids in FAMILIES:
        catalog.add_family(Family(slug, name, vendor, reasoning, coding, best_for))
        price = Price(parse_usd(inp), parse_usd(out))
        for model_id in ids:
            catalog.add_model(
                ModelSpec(model_id, slug, ctx, _max_output(ctx), price, description=best_for)
            )
    for model_id, ctx, inp, out in MOONSHOT_VARIANTS:
        catalog.add_model(
            ModelSpec(
                model_id, "kimi", ctx, _max_output(ctx), Price(parse_usd(inp), parse_usd(out)),
                description=f"Kimi with a {ctx // K}K-token context window",
            )
        )
    variants = tuple(v[0] for v in MOONSHOT_VARIANTS)
    catalog.add_model(
        ModelSpec(
            "moonshot-v1-auto", "kimi", 2048 * K, DEFAULT_MAX_OUTPUT,
            Price(parse_usd("0.60"), parse_usd("1.20")),
            description="Picks the smallest moonshot-v1 variant that fits prompt and output",
            auto_variants=variants,
        )
    )
    catalog.add_family(
        Family(
            "demo", "SmarToken demo", "SmarToken", 1, 1,
            "Trying the gateway, console and SDKs with no vendor account",
            description="DEMO: deterministic text from the built-in demo provider, "
                        "not a real model",
        )
    )
    catalog.add_model(
        ModelSpec(
            DEMO_MODEL_ID, "demo", 128 * K, DEFAULT_MAX_OUTPUT,
            Price(parse_usd("0.10"), parse_usd("0.20")),
            description="DEMO: deterministic streamed text for trying the gateway",
        )
    )
    catalog.add_model(
        ModelSpec(
            "demo-embedding", "demo", 8 * K, 0, Price(parse_usd("0.02"), 0),
            description="DEMO: deterministic embeddings", kind="embedding",
        )
    )
    return catalog
