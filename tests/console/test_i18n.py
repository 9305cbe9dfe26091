"""Simplified Chinese and English (issue 17): every string of the console's templates and
scripts has a translation; the language comes from the browser, can be switched and sticks;
money, numbers and dates follow the locale; API errors speak Chinese to clients that ask."""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Any

import httpx
from babel.messages.extract import extract_python
from jinja2.ext import babel_extract

from smartoken.i18n.catalog import JS_MESSAGES, VALUES, translations
from smartoken.i18n.locales import negotiate
from tests.console.conftest import add_user, http_session

TEMPLATES = Path(__file__).resolve().parents[2] / "smartoken" / "console" / "templates"
PW = "pw-lingua-123456"
PAGES = ("/console/", "/console/keys", "/console/usage", "/console/wallet",
         "/console/playground", "/console/models", "/console/models/kimi-k2",
         "/console/admin/routes", "/console/admin/accounts", "/console/files",
         "/console/admin/platform", "/console/admin/providers")


def _msgids() -> set[str]:
    ids: set[str] = {*JS_MESSAGES, *VALUES}
    for path in glob.glob(str(TEMPLATES / "*.html")):
        with open(path, "rb") as f:
            for _, _, msg, _ in babel_extract(f, ("_", "gettext"), [], {}):
                text = msg if isinstance(msg, str) else (msg or (None,))[0]
                if text:  # _(label) with a variable: its values are checked below
                    ids.add(text)
    # Messages written in Python for the console (i18n/message.py: N_).
    for path in glob.glob(str(TEMPLATES.parents[1] / "**" / "*.py"), recursive=True):
        with open(path, "rb") as f:
            for _, _, msg, _ in extract_python(f, ("N_",), [], {}):
                text = msg if isinstance(msg, str) else (msg or (None,))[0]
                if text:
                    ids.add(text)
    ids.update(("Dashboard", "API keys", "Usage", "Wallet", "Playground", "Models", "Files"))
    return ids


def test_every_console_string_has_a_chinese_translation() -> None:
    zh = translations("zh_CN")
    missing = sorted(m for m in _msgids() if m and zh.gettext(m) == m
                     and re.search(r"[A-Za-z]{3,}", m) and m not in (
                         "cURL", "Python", "TypeScript", "SmarToken", "SSE", "ID", "TTFT"))
    assert not missing, missing


def test_locale_negotiation() -> None:
    assert negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
    assert negotiate("en-US,en;q=0.9,zh-CN;q=0.8") == "en"
    assert negotiate("fr-FR,zh;q=0.5") == "zh_CN"
    assert negotiate("zh-TW") == "en"  # Traditional Chinese: not served as Simplified
    assert negotiate("zh-CN", cookie="en") == "en"  # the user's choice wins
    assert negotiate(None) == "en" and negotiate("de", cookie="xx") == "en"


def test_pages_in_both_languages_switch_sticks_and_formats_follow(make_inproc: Any) -> None:
    gw = make_inproc()
    admin = add_user(gw, "lin", PW, role="admin", credit="1234.5")
    assert admin
    client, _ = http_session(gw, "lin", PW)
    for lang, marker, money in (("zh-CN", "仪表盘", "US$1,234.5000"),
                                ("en-US", "Dashboard", "$1,234.5000")):
        client.headers["accept-language"] = lang
        for path in PAGES:
            r = client.get(path)
            assert r.status_code == 200, (lang, path, r.text[:300])
            assert f'<html lang="{lang[:2] if lang.startswith("en") else "zh-CN"}"' in r.text
        dash = client.get("/console/").text
        assert marker in dash and money in dash
    # The switch: a cookie that outlives the browser's header.
    client.headers["accept-language"] = "en-US"
    r = client.get("/console/lang", params={"to": "zh_CN", "next": "/console/usage"})
    assert r.status_code == 303 and r.headers["location"] == "/console/usage"
    assert "st_lang=zh_CN" in r.headers["set-cookie"]
    assert "用量" in client.get("/console/usage").text
    assert client.get("/console/lang", params={"to": "zh_CN", "next": "//evil.example"}
                      ).headers["location"] == "/console/"
    # Dark mode sticks through its cookie; absent, the page follows the system.
    client.cookies.set("st_theme", "dark")
    assert '<html lang="zh-CN" data-theme="dark">' in client.get("/console/").text
    client.cookies.set("st_theme", "bogus")
    assert 'data-theme="' not in client.get("/console/").text.split(">", 2)[1]


def test_api_errors_in_chinese_when_asked(make_inproc: Any) -> None:
    gw = make_inproc()
    url = f"{gw.base_url}/v1/chat/completions"
    body = {"model": "kimi-k2", "messages": [{"role": "user", "content": "hi"}]}
    en = httpx.post(url, json=body, headers={"authorization": "Bearer sk-st-wrong"})
    zh = httpx.post(url, json=body, headers={"authorization": "Bearer sk-st-wrong",
                                             "accept-language": "zh-CN,zh;q=0.9"})
    assert en.status_code == zh.status_code == 401
    assert zh.json()["error"]["code"] == en.json()["error"]["code"]  # codes never translated
    assert zh.json()["error"]["message"].startswith("API 密钥无效：")
    assert zh.json()["error"]["message"].endswith(en.json()["error"]["message"])
    assert not re.search(r"[\u4e00-\u9fff]", en.json()["error"]["message"])
    key = gw.key(account="poor")
    broke = httpx.post(url, json=body, headers={"authorization": f"Bearer {key}",
                                                "accept-language": "zh-CN"})
    assert broke.status_code == 402 and broke.json()["error"]["message"].startswith("钱包余额不足")
