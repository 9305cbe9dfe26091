"""The catalog as data: a YAML/JSON document of families, models, prices and their sources,
turned into a ``Catalog``. The built-in one is ``builtin.yaml`` beside this module; an operator's
import (``smartoken catalog import FILE``, ``PUT /admin/catalog``) is a document of the same
shape laid over it.

Shape (every key optional except where a model needs it)::

    currencies: {CNY: {usd_per_unit: "0.14", as_of: 2026-12-01, source: URL}}
    windows:    {NAME: {tz: Asia/Shanghai, days: [mon, ...], hours: ["09:00-12:00", ...],
                        except_dates: [2026-10-01, ...], source: {url, as_of}}}
    families:   {SLUG: {name, vendor, reasoning, coding, best_for, description,
                        capabilities: [tools, json, vision, audio, video, reasoning, fim],
                        i18n: {zh_CN: {name, vendor, best_for, description}}}}
    models:
      ID:
        alias_of: OTHER-ID       # start from another entry's fields
        family, kind, context_window, max_output, description, upstream_id, params,
        fallbacks, context_fallbacks, auto_variants
        capabilities: [...]      # replaces the family's list for this model
        i18n: {zh_CN: {description}}         # the text in another language (optional)
        context_source: {url, as_of, note}   # or "unverified"
        price: {currency: USD|CNY, input, output, cached_input, cache_write, source: {...}}
        price_windows: [{window: NAME, input, output, cached_input, cache_write}]

Prices are decimal strings per 1M tokens; a CNY price is converted with the document's rate and
rounded half-up once to the micro-dollar. Laying one document over another replaces entries by
key (a model, a family, a window, a currency) and removes those set to null. A translation
(``i18n``) sits beside the English text it translates, so an entry an import replaces loses it
with the text; an alias that sets its own ``description`` does not inherit its target's
translation of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smartoken.catalog.model import (
    CAPABILITIES,
    FAMILY_TEXT,
    MODEL_TEXT,
    Catalog,
    Family,
    ModelSpec,
    Source,
)
from smartoken.catalog.prices import PriceWindow
from smartoken.i18n.locales import DEFAULT as DEFAULT_LOCALE
from smartoken.i18n.locales import SUPPORTED
from smartoken.money import MICRO_PER_USD, Price

SECTIONS = ("currencies", "windows", "families", "models")
DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
MODEL_KEYS = {"alias_of", "family", "kind", "context_window", "max_output", "description",
              "upstream_id", "params", "fallbacks", "context_fallbacks", "auto_variants",
              "context_source", "price", "price_windows", "capabilities", "i18n"}
PRICE_KEYS = ("input", "output", "cached_input", "cache_write")
KINDS = ("chat", "embedding")


class CatalogError(ValueError):
    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.source, self.key, self.problem = source, key, problem


def overlay(base: Mapping[str, Any], top: Mapping[str, Any],
            keep_nulls: bool = False) -> dict[str, Any]:
    """``top`` laid over ``base``: entries replaced by key, null entries removed (or, with
    ``keep_nulls``, kept as null so that the result still removes them from what it is laid
    over next: merging one import into another)."""
    if not isinstance(top, Mapping):
        raise CatalogError("<catalog>", "<top level>", "must be a mapping")
    out: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section in SECTIONS:
        if section not in top or top[section] is None:
            continue
        if not isinstance(top[section], Mapping):
            raise CatalogError("<catalog>", section, "must be a mapping")
        merged = dict(out.get(section) or {})
        for key, value in dict(top[section]).items():
            if value is None and not keep_nulls:
                merged.pop(key, None)
            else:
                merged[key] = value
        out[section] = merged
    for key, value in top.items():
        if key not in SECTIONS:
            out[key] = value
    return out


class _Reader:
    """Builds the catalog from one (already laid-over) document, naming the key of any error."""

    def __init__(self, doc: Any, source: str) -> None:
        if not isinstance(doc, dict):
            raise CatalogError(source, "<top level>", "must be a mapping")
        self.doc, self.source = doc, source
        for key in doc:
            if key not in (*SECTIONS, "format", "as_of", "notes"):
                self.fail(str(key), "unknown section")
        self.rates = {str(k): self._rate(str(k), v)
                      for k, v in self.section("currencies").items()}
        self.windows = {str(k): self._window(str(k), v)
                        for k, v in self.section("windows").items()}

    def fail(self, key: str, problem: str) -> NoReturn:
        raise CatalogError(self.source, key, problem)

    def section(self, name: str) -> dict[str, Any]:
        value = self.doc.get(name) or {}
        if not isinstance(value, dict):
            self.fail(name, "must be a mapping")
        return value

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, "must be a mapping")
        return value

    def decimal(self, value: Any, key: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(key, f"must be a decimal string like \"0.60\", got {value!r}")
        try:
            dec = Decimal(str(value))
        except InvalidOperation:
            self.fail(key, f"not a number: {value!r}")
        if not dec.is_finite() or dec < 0:
            self.fail(key, f"must be a non-negative number, got {value!r}")
        return dec

    def integer(self, value: Any, key: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(key, f"must be an integer >= {minimum}, got {value!r}")
        return int(value)

    def listed(self, value: Any, key: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(key, "must be a list")
        return value

    def ids(self, value: Any, key: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, "must be a list of model ids")
        return tuple(value)

    def source_of(self, value: Any, key: str) -> Source:
        if value is None or value == "unverified":
            return Source()
        if isinstance(value, str):
            return Source(value)
        raw = self.mapping(value, key)
        for extra in set(raw) - {"url", "as_of", "note"}:
            self.fail(f"{key}.{extra}", "unknown option")
        return Source(str(raw.get("url") or "unverified"), str(raw.get("as_of") or ""),
                      str(raw.get("note") or ""))

    def i18n(self, value: Any, key: str, fields: tuple[str, ...]) -> dict[str, dict[str, str]]:
        """``{LOCALE: {FIELD: text}}``: translations of the entry's text (locales.SUPPORTED)."""
        if value is None:
            return {}
        out: dict[str, dict[str, str]] = {}
        for loc, texts in self.mapping(value, key).items():
            if loc not in SUPPORTED or loc == DEFAULT_LOCALE:
                self.fail(f"{key}.{loc}", f"unknown locale (known: "
                          f"{', '.join(s for s in SUPPORTED if s != DEFAULT_LOCALE)})")
            for name, text in self.mapping(texts, f"{key}.{loc}").items():
                if name not in fields:
                    self.fail(f"{key}.{loc}.{name}", f"not a translatable field (one of "
                              f"{', '.join(fields)})")
                if not isinstance(text, str):
                    self.fail(f"{key}.{loc}.{name}", "must be a string")
            out[str(loc)] = {str(k): str(v) for k, v in texts.items()}
        return out

    def _rate(self, name: str, raw: Any) -> Decimal:
        raw = self.mapping(raw, f"currencies.{name}")
        rate = self.decimal(raw.get("usd_per_unit"), f"currencies.{name}.usd_per_unit")
        if rate == 0:
            self.fail(f"currencies.{name}.usd_per_unit", "must be above 0")
        return rate

    def _window(self, name: str, raw: Any) -> tuple[str, frozenset[int],
                                                    tuple[tuple[time, time], ...],
                                                    frozenset[date]]:
        key = f"windows.{name}"
        raw = self.mapping(raw, key)
        for extra in set(raw) - {"tz", "days", "hours", "except_dates", "source", "note"}:
            self.fail(f"{key}.{extra}", "unknown option")
        tz = str(raw.get("tz", ""))
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(f"{key}.tz", f"unknown time zone {tz!r}")
        days = raw.get("days") or list(DAYS)
        if not isinstance(days, list) or any(not isinstance(d, str) or d not in DAYS
                                             for d in days):
            self.fail(f"{key}.days", f"must be a list of {', '.join(DAYS)}")
        spans = []
        for i, text in enumerate(self.listed(raw.get("hours"), f"{key}.hours")):
            m = HOURS.match(str(text))
            if not m or int(m[1]) > 23 or int(m[3]) > 24 or int(m[2]) > 59 or int(m[4]) > 59:
                self.fail(f"{key}.hours[{i}]", f"must be HH:MM-HH:MM, got {text!r}")
            end = time(0) if int(m[3]) == 24 else time(int(m[3]), int(m[4]))
            spans.append((time(int(m[1]), int(m[2])), end))
        if not spans:
            self.fail(f"{key}.hours", "needs at least one HH:MM-HH:MM span")
        dates = []
        for i, d in enumerate(self.listed(raw.get("except_dates"), f"{key}.except_dates")):
            try:
                dates.append(d if isinstance(d, date) else date.fromisoformat(str(d)))
            except ValueError:
                self.fail(f"{key}.except_dates[{i}]", f"not a date: {d!r}")
        return tz, frozenset(DAYS[d] for d in days), tuple(spans), frozenset(dates)

    def price(self, raw: Any, key: str, currency: str | None = None) -> Price:
        raw = self.mapping(raw, key)
        allowed = {*PRICE_KEYS, "currency", "source", "window", "note"}
        for extra in set(raw) - allowed:
            self.fail(f"{key}.{extra}", "unknown option")
        currency = str(raw.get("currency", currency or "USD"))
        if currency != "USD" and currency not in self.rates:
            self.fail(f"{key}.currency", f"no rate for {currency!r} in currencies")
        rate = Decimal(1) if currency == "USD" else self.rates[currency]

        def micro(name: str) -> int | None:
            if raw.get(name) is None:
                return None
            usd = self.decimal(raw[name], f"{key}.{name}") * rate * MICRO_PER_USD
            return int(usd.quantize(Decimal(1), rounding=ROUND_HALF_UP))

        for required in ("input", "output"):
            if raw.get(required) is None:
                self.fail(f"{key}.{required}", "is required")
        return Price(micro("input") or 0, micro("output") or 0, micro("cached_input"),
                     micro("cache_write"))

    def family(self, slug: str, raw: Any) -> Family:
        key = f"families.{slug}"
        raw = self.mapping(raw, key)
        for extra in set(raw) - {"name", "vendor", "reasoning", "coding", "best_for",
                                 "description", "capabilities", "i18n"}:
            self.fail(f"{key}.{extra}", "unknown option")
        return Family(slug, str(raw.get("name", slug)), str(raw.get("vendor", "")),
                      self.integer(raw.get("reasoning", 0), f"{key}.reasoning"),
                      self.integer(raw.get("coding", 0), f"{key}.coding"),
                      str(raw.get("best_for", "")), str(raw.get("description", "")),
                      self.capabilities(raw.get("capabilities"), f"{key}.capabilities"),
                      self.i18n(raw.get("i18n"), f"{key}.i18n", FAMILY_TEXT))

    def capabilities(self, value: Any, key: str) -> tuple[str, ...]:
        items = self.listed(value, key)
        for i, c in enumerate(items):
            if c not in CAPABILITIES:
                self.fail(f"{key}[{i}]", f"unknown capability {c!r} (known: "
                          f"{', '.join(CAPABILITIES)})")
        return tuple(dict.fromkeys(str(c) for c in items))

    def resolved(self, model_id: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        """The model's entry with ``alias_of`` followed (the alias's own keys win)."""
        models = self.section("models")
        raw = self.mapping(models.get(model_id), f"models.{model_id}")
        target = raw.get("alias_of")
        if target is None:
            return raw
        if not isinstance(target, str) or target in seen or target not in models:
            self.fail(f"models.{model_id}.alias_of", f"unknown or circular model {target!r}")
        base = self.resolved(str(target), (*seen, model_id))
        out = {**base, **{k: v for k, v in raw.items() if k != "alias_of"},
               "upstream_id": raw.get("upstream_id", base.get("upstream_id") or target)}
        # The target's translations of the fields the alias sets itself do not apply.
        inherited = base.get("i18n")
        if isinstance(inherited, dict) and any(f in raw for f in MODEL_TEXT):
            kept = {loc: {f: t for f, t in texts.items() if f not in raw}
                    for loc, texts in inherited.items() if isinstance(texts, dict)}
            own = raw.get("i18n")
            for loc, texts in (own.items() if isinstance(own, dict) else ()):
                kept[loc] = {**kept.get(loc, {}), **(texts if isinstance(texts, dict) else {})}
            out["i18n"] = kept if isinstance(own, dict) or own is None else own
        return out

    def model(self, model_id: str) -> ModelSpec:
        key = f"models.{model_id}"
        raw = self.resolved(model_id)
        for extra in set(self.section("models")[model_id]) - MODEL_KEYS:
            self.fail(f"{key}.{extra}", "unknown option")
        for required in ("family", "context_window", "price"):
            if required not in raw:
                self.fail(f"{key}.{required}", "is required")
        kind = str(raw.get("kind", "chat"))
        if kind not in KINDS:
            self.fail(f"{key}.kind", f"must be one of {', '.join(KINDS)}")
        context = self.integer(raw["context_window"], f"{key}.context_window", 1)
        max_output = self.integer(raw.get("max_output", 0 if kind == "embedding"
                                          else min(8192, context)), f"{key}.max_output")
        price_raw = self.mapping(raw["price"], f"{key}.price")
        price = self.price(price_raw, f"{key}.price")
        windows: list[PriceWindow] = []
        for i, w in enumerate(self.listed(raw.get("price_windows"),
                                          f"{key}.price_windows")):
            wkey = f"{key}.price_windows[{i}]"
            w = self.mapping(w, wkey)
            name = str(w.get("window"))
            if name not in self.windows:
                self.fail(f"{wkey}.window", f"unknown window {name!r}")
            tz, days, spans, dates = self.windows[name]
            wprice = self.price(w, wkey, str(price_raw.get("currency", "USD")))
            windows.extend(PriceWindow(tz, days, start, end, wprice, dates, name)
                           for start, end in spans)
        params = raw.get("params") or {}
        if not isinstance(params, dict):
            self.fail(f"{key}.params", "must be a mapping of request fields")
        return ModelSpec(
            id=model_id, family=str(raw["family"]), context_window=context,
            max_output=max_output, price=price, description=str(raw.get("description", "")),
            auto_variants=self.ids(raw.get("auto_variants"), f"{key}.auto_variants"),
            fallbacks=self.ids(raw.get("fallbacks"), f"{key}.fallbacks"),
            context_fallbacks=self.ids(raw.get("context_fallbacks"),
                                       f"{key}.context_fallbacks"),
            kind=kind, windows=tuple(windows), upstream_id=str(raw.get("upstream_id") or ""),
            params=dict(params),
            price_source=self.source_of(price_raw.get("source"), f"{key}.price.source"),
            context_source=self.source_of(raw.get("context_source"), f"{key}.context_source"),
            capabilities=self.capabilities(raw["capabilities"], f"{key}.capabilities")
            if "capabilities" in raw else self.family_capabilities(str(raw["family"])),
            i18n=self.i18n(raw.get("i18n"), f"{key}.i18n", MODEL_TEXT),
        )

    def family_capabilities(self, slug: str) -> tuple[str, ...]:
        raw = self.section("families").get(slug)
        if not isinstance(raw, dict) or raw.get("capabilities") is None:
            return ()
        return self.capabilities(raw["capabilities"], f"families.{slug}.capabilities")


def build(doc: Any, source: str = "<catalog>") -> Catalog:
    """A ``Catalog`` from a document, or a ``CatalogError`` naming the bad key."""
    try:
        return _build(doc, source)
    except CatalogError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a shape not foreseen
        raise CatalogError(source, "<document>", f"malformed: {exc}") from None


def _build(doc: Any, source: str) -> Catalog:
    reader = _Reader(doc, source)
    catalog = Catalog()
    for slug, raw in reader.section("families").items():
        catalog.add_family(reader.family(str(slug), raw))
    for model_id in reader.section("models"):
        spec = reader.model(str(model_id))
        if spec.family not in catalog.families:
            reader.fail(f"models.{model_id}.family", f"unknown family {spec.family!r}")
        catalog.add_model(spec)
    for spec in catalog.models.values():
        for name, ids in (("fallbacks", spec.fallbacks), ("auto_variants", spec.auto_variants),
                          ("context_fallbacks", spec.context_fallbacks)):
            for other in ids:
                if other not in catalog.models:
                    reader.fail(f"models.{spec.id}.{name}", f"unknown model {other!r}")
    return catalog
