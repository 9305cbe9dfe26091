"""The catalog as data: the built-in document, its sources, the loader's checks, time-of-day
windows and cache prices, without a server."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartoken.catalog.builtin import builtin_catalog, builtin_document
from smartoken.catalog.document import CatalogError, build, overlay
from smartoken.catalog.prices import PriceWindow, price_at
from smartoken.config import ConfigError, load_settings, with_catalog
from smartoken.money import Price

BEIJING = ZoneInfo("Asia/Shanghai")
# ids the tests, README and existing clients rely on
KEPT_IDS = ("kimi-k2", "deepseek-chat", "deepseek-reasoner", "moonshot-v1-8k", "moonshot-v1-32k",
            "moonshot-v1-128k", "moonshot-v1-256k", "moonshot-v1-512k", "moonshot-v1-1m",
            "moonshot-v1-2m", "moonshot-v1-auto", "qwen-plus", "glm-4.6", "minimax-m2",
            "doubao-pro", "ernie-4.5", "hunyuan-turbos", "demo", "demo-embedding")


def test_every_price_and_context_window_names_its_source_and_date() -> None:
    catalog = builtin_catalog()
    assert len(catalog.models) >= 40
    for spec in catalog.models.values():
        for src in (spec.price_source, spec.context_source):
            assert src.url == "unverified" or src.url.startswith("https://"), (spec.id, src)
            if src.verified:
                date.fromisoformat(src.as_of)  # a real date, not a placeholder
    verified = [s.id for s in catalog.models.values() if s.price_source.verified]
    assert {"deepseek-flash", "deepseek-v4-pro", "kimi-k2.6", "glm-5", "text-embedding-v4",
            "minimax-m2.7"} <= set(verified)


def test_kept_ids_and_current_flagships_are_there() -> None:
    catalog = builtin_catalog()
    assert set(KEPT_IDS) <= set(catalog.models)
    assert {"deepseek-flash", "deepseek-v4-pro", "kimi-k2.6", "kimi-k3", "glm-5", "qwen3-max",
            "doubao-seed-1.6", "minimax-m2.7"} <= set(catalog.models)
    embeddings = [s for s in catalog.models.values() if s.kind == "embedding"
                  and s.family != "demo"]
    assert len(embeddings) >= 3 and all(s.max_output == 0 for s in embeddings)
    # Legacy ids are served by their successor, with the successor's price and window.
    chat, reasoner = catalog.models["deepseek-chat"], catalog.models["deepseek-reasoner"]
    assert chat.upstream_id == reasoner.upstream_id == "deepseek-flash"
    assert chat.params == {"thinking": {"type": "disabled"}}
    assert reasoner.params == {"thinking": {"type": "enabled"}}
    assert chat.price == catalog.models["deepseek-flash"].price and chat.windows
    assert catalog.models["kimi-k2"].upstream_id == "kimi-k2.6"
    # not every model at one placeholder size any more
    assert len({s.context_window for s in catalog.models.values()}) >= 8


def test_cny_prices_are_converted_at_the_documented_rate_exactly() -> None:
    glm5 = builtin_catalog().models["glm-5"]
    rate = builtin_document()["currencies"]["CNY"]["usd_per_unit"]
    assert rate == "0.1400"
    assert glm5.price == Price(840_000, 3_080_000, 210_000)  # 6 / 22 / 1.5 CNY x 0.14
    doc = {"currencies": {"CNY": {"usd_per_unit": "0.137"}},
           "families": {"f": {}},
           "models": {"m": {"family": "f", "context_window": 10,
                            "price": {"currency": "CNY", "input": "0.0000011", "output": "1"}}}}
    # 0.0000011 CNY x 0.137 = 0.0000001507 USD = 0.1507 micro -> 0 (half-up, once)
    assert build(doc).models["m"].price == Price(0, 137_000)


@pytest.mark.parametrize(("doc", "key"), [
    ({"models": {"m": {"family": "f", "context_window": 5,
                       "price": {"input": "0.1", "output": "x"}}}}, "models.m.price.output"),
    ({"models": {"m": {"family": "f", "context_window": 5,
                       "price": {"input": 0.1, "output": "1"}}}}, "models.m.price.input"),
    ({"models": {"m": {"family": "nope", "context_window": 5,
                       "price": {"input": "1", "output": "1"}}}}, "models.m.family"),
    ({"models": {"m": {"family": "f", "context_window": 0,
                       "price": {"input": "1", "output": "1"}}}}, "models.m.context_window"),
    ({"models": {"m": {"family": "f", "context_window": 5, "colour": "red",
                       "price": {"input": "1", "output": "1"}}}}, "models.m.colour"),
    ({"models": {"m": {"alias_of": "gone"}}}, "models.m.alias_of"),
    ({"models": {"m": {"family": "f", "context_window": 5,
                       "price": {"currency": "EUR", "input": "1", "output": "1"}}}},
     "models.m.price.currency"),
    ({"models": {"m": {"family": "f", "context_window": 5,
                       "price": {"input": "1", "output": "1"},
                       "price_windows": [{"window": "nope", "input": "2", "output": "2"}]}}},
     "models.m.price_windows[0].window"),
    ({"windows": {"w": {"tz": "Mars/Olympus", "hours": ["09:00-10:00"]}}}, "windows.w.tz"),
    ({"windows": {"w": {"tz": "UTC", "hours": ["9-10"]}}}, "windows.w.hours[0]"),
    ({"models": {"m": {"family": "f", "context_window": 5, "fallbacks": ["x"],
                       "price": {"input": "1", "output": "1"}}}}, "models.m.fallbacks"),
    ({"shop": {}}, "shop"),
])
def test_a_bad_document_is_refused_naming_the_key(doc: dict[str, Any], key: str) -> None:
    with pytest.raises(CatalogError) as exc:
        build({"families": {"f": {}}, **doc}, "import.yaml")
    assert exc.value.key == key and str(exc.value).startswith("import.yaml: " + key)


def test_overlay_replaces_entries_and_null_removes_them() -> None:
    base = builtin_document()
    doc = overlay(base, {"models": {"kimi-k2": None, "kimi-k2.6": {
        **base["models"]["kimi-k2.6"], "price": {"input": "1.05", "output": "4"}}}})
    catalog = build(doc)
    assert "kimi-k2" not in catalog.models
    assert catalog.models["kimi-k2.6"].price.input == 1_050_000
    assert base["models"]["kimi-k2.6"]["price"]["input"] == "0.95"  # the base is untouched
    # merging one import into another keeps the removal for the next overlay
    previous = {"models": {"kimi-k2.6": base["models"]["kimi-k2.6"]}}
    merged = overlay(previous, {"models": {"kimi-k2": None}}, keep_nulls=True)
    assert merged["models"] == {**previous["models"], "kimi-k2": None}
    assert "kimi-k2" not in build(overlay(base, merged)).models
    # removing a model another entry is an alias of is refused, naming the alias
    with pytest.raises(CatalogError, match=r"models\.kimi-k2\.alias_of"):
        build(overlay(base, {"models": {"kimi-k2.6": None}}))


def test_the_file_wins_over_an_import_and_a_file_price_drops_the_windows(tmp_path: Any) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("models:\n  deepseek-chat: {output_price: '9.00'}\n"
                   "  kimi-k2: {fallbacks: [moonshot-v1-8k]}\n")
    settings = load_settings(cfg, env={})
    imported = with_catalog(settings, {"models": {"deepseek-chat": {
        "alias_of": "deepseek-flash", "price": {"input": "5", "output": "5"}}}})
    spec = imported.catalog.models["deepseek-chat"]
    assert spec.price.output == 9_000_000 and spec.price.input == 5_000_000
    assert spec.windows == () and spec.price_source.note == "configuration file"
    # an import that removes what the file refers to is refused whole
    with pytest.raises(ConfigError, match="moonshot-v1-8k"):
        with_catalog(settings, {"models": {"moonshot-v1-8k": None, "moonshot-v1-auto": None}})


def _beijing(*ymdhms: int) -> datetime:
    return datetime(*ymdhms, tzinfo=BEIJING)  # type: ignore[misc]


@pytest.mark.parametrize(("when", "peak"), [
    (_beijing(2026, 12, 1, 9, 0, 0), True),  # Tuesday 09:00 Beijing = 01:00 UTC
    (_beijing(2026, 12, 1, 8, 59, 59), False),
    (_beijing(2026, 12, 1, 11, 59, 59), True),
    (_beijing(2026, 12, 1, 12, 0, 0), False),  # the lunch gap
    (_beijing(2026, 12, 1, 14, 0, 0), True),
    (_beijing(2026, 12, 1, 18, 0, 0), False),
    (_beijing(2026, 12, 5, 10, 0, 0), False),  # Saturday
    (_beijing(2026, 10, 1, 10, 0, 0), False),  # National Day, a Thursday
    (_beijing(2026, 12, 4, 17, 59, 59), True),  # Friday
])
def test_deepseek_peak_hours_by_the_start_instant(when: datetime, peak: bool) -> None:
    spec = builtin_catalog().models["deepseek-flash"]
    got = spec.price_at(when.astimezone(UTC))  # any zone: the window converts
    assert got == (Price(300_000, 1_200_000, 6_000) if peak else Price(150_000, 600_000, 3_000))


def test_a_window_across_midnight_belongs_to_the_day_it_opened() -> None:
    night = Price(1, 1)
    w = PriceWindow("Europe/Berlin", frozenset({4}), time(22), time(2), night,  # Fridays
                    frozenset({date(2026, 12, 25)}))
    berlin = ZoneInfo("Europe/Berlin")
    base = Price(9, 9)
    assert price_at(base, (w,), datetime(2026, 12, 4, 23, 30, tzinfo=berlin)) == night
    assert price_at(base, (w,), datetime(2026, 12, 5, 1, 59, tzinfo=berlin)) == night  # Sat
    assert price_at(base, (w,), datetime(2026, 12, 5, 2, 0, tzinfo=berlin)) == base
    assert price_at(base, (w,), datetime(2026, 12, 5, 23, 0, tzinfo=berlin)) == base
    assert price_at(base, (w,), datetime(2026, 12, 26, 1, 0, tzinfo=berlin)) == base  # holiday
    # daylight saving: 22:30 local on the last Friday of March 2027 is still in the window
    assert price_at(base, (w,), datetime(2027, 3, 26, 22, 30, tzinfo=berlin)
                    .astimezone(UTC) + timedelta(0)) == night


def test_cache_reads_and_writes_are_priced_apart_exactly() -> None:
    p = Price(input=3_000_000, output=15_000_000, cached_input=300_000, cache_write=3_750_000)
    # 1000 prompt tokens: 600 read from cache, 300 written to it, 100 plain; 50 output
    assert p.cost(1000, 50, cached_tokens=600, cache_write_tokens=300) == \
        100 * 3 + 600 * 0.3 + 300 * 3.75 + 50 * 15 == 2355
    assert p.cost(100, 0, cached_tokens=80, cache_write_tokens=80) == (
        0 * 3 + 80 * 0.3 + 20 * 3.75)  # writes capped at what is left of the prompt


@given(st.integers(0, 10**7), st.integers(0, 10**6), st.integers(0, 10**7),
       st.integers(0, 10**7), st.integers(0, 5_000_000), st.integers(0, 5_000_000),
       st.integers(0, 5_000_000), st.integers(0, 5_000_000))
def test_the_reserved_worst_case_covers_any_cache_split(
        prompt: int, out: int, read: int, written: int, inp: int, outp: int, cached: int,
        write: int) -> None:
    p = Price(inp, outp, cached, write)
    assert p.cost(prompt, out, read, written) <= p.worst_case(prompt, out)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**7) | st.floats(allow_nan=True) |
    st.sampled_from(["", "0.5", "-1", "CNY", "mon", "09:00-12:00", "Asia/Shanghai", "kimi",
                     "kimi-k2.6", "deepseek-peak", "unverified", "2026-01-01"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["family", "context_window", "price", "input", "output", "alias_of",
                         "window", "price_windows", "hours", "days", "tz", "except_dates",
                         "currency", "source", "params", "kind", "max_output", "fallbacks",
                         "usd_per_unit", "kimi-k2.6", "deepseek-peak", "x", "i18n",
                         "zh_CN"]), inner, max_size=4),
    max_leaves=12)


@given(st.dictionaries(st.sampled_from(["models", "families", "windows", "currencies", "x"]),
                       JSONISH, max_size=3))
def test_any_import_document_is_either_served_or_refused_with_a_catalog_error(
        doc: dict[str, Any]) -> None:
    """What an admin may PUT: never an unexpected exception (a 500), only a named refusal."""
    with contextlib.suppress(CatalogError):
        build(overlay(builtin_document(), doc))
