"""Which language a request gets: the console's sticky choice (a cookie), else the browser's
``Accept-Language``, else English."""

from __future__ import annotations

DEFAULT = "en"
SUPPORTED = ("en", "zh_CN")
COOKIE = "st_lang"
NAMES = {"en": "English", "zh_CN": "简体中文"}
HTML_LANG = {"en": "en", "zh_CN": "zh-CN"}


def _match(tag: str) -> str | None:
    tag = tag.strip().replace("-", "_").lower()
    if not tag:
        return None
    if tag.startswith("zh"):
        # Simplified Chinese serves zh, zh-CN, zh-SG and zh-Hans; zh-TW/zh-HK/zh-Hant are
        # Traditional, which we do not have, so they fall through to the next preference.
        traditional = ("_tw", "_hk", "_mo", "_hant")
        return None if any(t in tag for t in traditional) else "zh_CN"
    if tag.startswith("en") or tag == "*":
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The supported locale the header prefers most (q-values honoured), or None."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, i, tag))
    for _, _, tag in sorted(ranked):
        found = _match(tag)
        if found:
            return found
    return None


def negotiate(accept_language: str | None, cookie: str | None = None) -> str:
    if cookie in SUPPORTED:
        return str(cookie)
    return from_accept_language(accept_language) or DEFAULT
