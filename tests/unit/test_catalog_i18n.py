"""The catalog's text in Simplified Chinese (issue 17): an optional ``i18n`` beside the English
it translates, in the built-in document and in an operator's import; documents without it
keep loading as before, and a translation never outlives the text it translates."""

from __future__ import annotations

import copy
import re
from typing import Any

import httpx
import pytest

from smartoken.catalog.builtin import builtin_catalog, builtin_document
from smartoken.catalog.document import CatalogError, build, overlay
from smartoken.catalog.model import localized
from tests.moneykit import MASTER

ZH = "zh_CN"
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_built_in_family_and_description_reads_in_chinese() -> None:
    catalog = builtin_catalog()
    for fam in catalog.families.values():
        assert HAN.search(localized(fam, "best_for", ZH)), fam.slug
        assert localized(fam, "best_for", "en") == fam.best_for  # English unchanged
    for spec in catalog.models.values():
        zh = localized(spec, "description", ZH)
        # Untranslated only where the description is a product name and version.
        assert HAN.search(zh) or re.fullmatch(r"[A-Za-z]+[ -][A-Za-z0-9.-]+", zh), spec.id
    assert localized(catalog.families["kimi"], "vendor", ZH) == "月之暗面"
    assert localized(catalog.families["kimi"], "vendor", "en") == "Moonshot AI"


def _stripped(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _stripped(v) for k, v in doc.items() if k != "i18n"}
    return doc


def test_a_document_without_translations_loads_as_before() -> None:
    with_zh, without = builtin_catalog(), build(_stripped(builtin_document()))
    assert set(with_zh.models) == set(without.models)
    for model_id, spec in without.models.items():
        assert spec.i18n == {}
        assert spec.description == with_zh.models[model_id].description
        assert localized(spec, "description", ZH) == spec.description  # English, not blank
    assert without.families["kimi"].best_for == with_zh.families["kimi"].best_for


def test_an_alias_keeps_its_targets_translation_only_for_text_it_does_not_set() -> None:
    doc = builtin_document()
    doc["models"]["flash-alias"] = {"alias_of": "deepseek-flash"}
    doc["models"]["own-words"] = {"alias_of": "deepseek-flash", "description": "Mine"}
    catalog = build(doc)
    flash = catalog.models["deepseek-flash"]
    assert localized(catalog.models["flash-alias"], "description", ZH) == \
        localized(flash, "description", ZH)
    assert localized(catalog.models["own-words"], "description", ZH) == "Mine"
    # A built-in alias with its own description has its own translation.
    chat = catalog.models["deepseek-chat"]
    assert "关闭思考" in localized(chat, "description", ZH)
    assert localized(chat, "description", ZH) != localized(flash, "description", ZH)


def test_an_import_that_replaces_an_entry_replaces_its_translation() -> None:
    doc = overlay(builtin_document(), {
        "families": {"kimi": {"name": "Kimi", "vendor": "Moonshot", "best_for": "Agents"}},
        "models": {"kimi-k3": {"family": "kimi", "context_window": 8192,
                               "price": {"input": "1", "output": "2"},
                               "description": "Changed", "i18n": {ZH: {"description": "改了"}}}}})
    catalog = build(doc)
    assert localized(catalog.families["kimi"], "best_for", ZH) == "Agents"  # no stale Chinese
    assert localized(catalog.models["kimi-k3"], "description", ZH) == "改了"


@pytest.mark.parametrize(("i18n", "key"), [
    ({"fr": {"description": "x"}}, "models.demo.i18n.fr"),
    ({"en": {"description": "x"}}, "models.demo.i18n.en"),
    ({ZH: {"vendor": "x"}}, "models.demo.i18n.zh_CN.vendor"),
    ({ZH: {"description": 5}}, "models.demo.i18n.zh_CN.description"),
    ({ZH: ["x"]}, "models.demo.i18n.zh_CN"),
    ("x", "models.demo.i18n"),
])
def test_a_bad_translation_is_refused_naming_the_key(i18n: Any, key: str) -> None:
    doc = builtin_document()
    doc["models"]["demo"]["i18n"] = i18n
    with pytest.raises(CatalogError) as err:
        build(doc)
    assert err.value.key == key


def test_a_family_translation_is_checked_too() -> None:
    doc = builtin_document()
    doc["families"]["kimi"]["i18n"] = {ZH: {"reasoning": "五"}}
    with pytest.raises(CatalogError) as err:
        build(doc)
    assert err.value.key == "families.kimi.i18n.zh_CN.reasoning"


def test_the_admin_api_imports_and_exports_translations(make_inproc: Any) -> None:
    gw = make_inproc(env={"SMARTOKEN_MASTER_KEY": MASTER})
    url = f"{gw.base_url}/admin/catalog"
    auth = {"authorization": f"Bearer {MASTER}"}
    entry = copy.deepcopy(builtin_document()["models"]["kimi-k3"])
    entry["description"] = "Kimi K3, imported"
    entry["i18n"] = {ZH: {"description": "导入的 Kimi K3"}}
    r = httpx.put(url, params={"merge": "true"}, headers=auth, json={"models": {"kimi-k3": entry}})
    assert r.status_code == 200, r.text
    exported = httpx.get(url, headers=auth).json()
    assert exported["models"]["kimi-k3"]["i18n"] == {ZH: {"description": "导入的 Kimi K3"}}
    assert exported["families"]["kimi"]["i18n"][ZH]["vendor"] == "月之暗面"
    bad = httpx.put(url, params={"merge": "true"}, headers=auth, json={"models": {"kimi-k3": {
        **entry, "i18n": {"xx": {"description": "?"}}}}})
    assert bad.status_code == 400 and "i18n.xx" in bad.json()["error"]["message"]
    assert httpx.get(url, headers=auth).json()["models"]["kimi-k3"]["i18n"][ZH]["description"] \
        == "导入的 Kimi K3"  # the refused import changed nothing
