"""The model catalog: families, public model ids, context windows and prices."""

from __future__ import annotations

from dataclasses import dataclass, field

from smartoken.money import Price


@dataclass(frozen=True, slots=True)
class Family:
    slug: str
    name: str
    vendor: str
    reasoning: int
    coding: int
    best_for: str
    description: str = ""


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

    def family_of(self, model_id: str) -> Family | None:
        spec = self.models.get(model_id)
        return self.families.get(spec.family) if spec else None
