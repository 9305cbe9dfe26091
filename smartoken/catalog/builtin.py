"""The built-in catalog: ``builtin.yaml`` in this package (sources and as-of dates inside)."""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from smartoken.catalog.document import build
from smartoken.catalog.model import Catalog

DEMO_MODEL_ID = "demo"
FILE = "builtin.yaml"


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    text = resources.files("smartoken.catalog").joinpath(FILE).read_text(encoding="utf-8")
    doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: ~10x
    assert isinstance(doc, dict)
    return doc


def builtin_document() -> dict[str, Any]:
    """A private copy of the built-in catalog document (callers may change it)."""
    return copy.deepcopy(_document())


def builtin_catalog() -> Catalog:
    return build(_document(), f"smartoken/catalog/{FILE}")
