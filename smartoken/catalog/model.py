"""The model catalog: families, public model ids, context windows and prices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from smartoken.catalog.prices import PriceWindow, price_at
from smartoken.money import Price


@dataclass(frozen=True, slots=True)
class Source:
    """Where a figure comes from: a URL (or ``unverified``), the date it was read, a note."""

    url: str = "unverified"
    as_of: str = ""  # ISO date
    note: str = ""

    @property
    def verified(self) -> bool:
        return self.url != "unverified"


# What a model can do, as the catalog says: tool calls, JSON mode / structured output, image
# input, audio input, video input, a reasoning (thinking) mode, fill-in-the-middle completions.
CAPABILITIES = ("tools", "json", "vision", "audio", "video", "reasoning", "fim")


# The catalog's text a reader sees, translated in the document (``i18n: {zh_CN: {...}}`` on a
# family or a model): locale -> field -> text. A field without a translation reads in English.
Translations = Mapping[str, Mapping[str, str]]
FAMILY_TEXT = ("name", "vendor", "best_for", "description")
MODEL_TEXT = ("description",)


def localized(item: Family | ModelSpec, field: str, locale: str) -> str:
    """``item.field`` in ``locale`` when the catalog translates it, else as written."""
    text = item.i18n.get(locale, {}).get(field)
    return text if text else str(getattr(item, field))


@dataclass(frozen=True, slots=True)
class Family:
    slug: str
    name: str
    vendor: str
    reasoning: int
    coding: int
    best_for: str
    description: str = ""
    capabilities: tuple[str, ...] = ()  # what its models do unless a model says otherwise
    i18n: Translations = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    family: str
    context_window: int
    max_output: int
    price: Price
    description: str = ""
    # An ``auto`` model resolves to the smallest of these variants that fits the request.
    auto_variants: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = ()
    # Larger-context models to serve a prompt that does not fit this model's window.
    context_fallbacks: tuple[str, ...] = ()
    kind: str = "chat"  # "chat" or "embedding"
    # Time-of-day prices (catalog/prices.py); ``price`` applies outside every window.
    windows: tuple[PriceWindow, ...] = ()
    upstream_id: str = ""  # the vendor's id for preset routes (the public id when empty)
    # Fields added to every upstream request for this public id, unless the client sent them
    # (``deepseek-chat`` is DeepSeek's flash model with thinking disabled).
    params: Mapping[str, Any] = field(default_factory=dict)
    price_source: Source = Source()
    context_source: Source = Source()
    # What the model accepts and does, as its vendor documents it (see CAPABILITIES).
    capabilities: tuple[str, ...] = ()
    i18n: Translations = field(default_factory=dict)

    def price_at(self, when: datetime) -> Price:
        """The price of a request that starts at ``when``."""
        return price_at(self.price, self.windows, when) if self.windows else self.price


@dataclass(slots=True)
class Catalog:
    families: dict[str, Family] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)

    def add_family(self, family: Family) -> None:
        self.families[family.slug] = family

    def add_model(self, model: ModelSpec) -> None:
        self.models[model.id] = model

    def get(self, model_id: str) -> ModelSpec | None:
        return self.models.get(model_id)

    def copy(self) -> Catalog:
        return Catalog(dict(self.families), dict(self.models))
