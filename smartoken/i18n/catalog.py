"""Translations from the ``.po`` files beside this module, read with Babel at first use (no
compiled ``.mo`` to keep in the repository)."""

from __future__ import annotations

import functools
import gettext
import io
import json
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"


@functools.cache
def translations(locale: str) -> gettext.NullTranslations:
    from babel.messages.mofile import write_mo  # Babel is loaded with the first translation
    from babel.messages.pofile import read_po
    from babel.support import Translations

    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    po = folder / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        cat = read_po(f, locale=locale)
    # One more file per feature (signup.po, …): features added in parallel each keep their
    # strings in their own file instead of all appending to messages.po.
    for extra in sorted(folder.glob("*.po")):
        if extra.name != "messages.po":
            with extra.open("rb") as f:
                for message in read_po(f, locale=locale):
                    if message.id and message.string:
                        cat[message.id] = message
    buf = io.BytesIO()
    write_mo(buf, cat)
    buf.seek(0)
    return Translations(fp=buf)


# Strings the console's scripts show; a page carries their translations as JSON (st-i18n).
JS_MESSAGES = (
    "Copied", "Copy", "Spend (USD)", "Prompt", "Completion", "Tokens", "Price per 1M tokens",
    "in", "out", "You", "Reasoning", "Cost", "Latency", "TTFT", "The request failed",
    "The connection failed", "Conversation cleared.", "stopped", "est.", "Dark mode",
    "Light mode", "healthy", "cooling down", "probing", "ok", "failed",
    "Explain the best use case for this model.",
)

# Values from code that pages show through the ``tr`` filter: request statuses, attempt
# outcomes, key states, roles, wallet transaction kinds and actors, model capabilities.
VALUES = (
    "ok", "partial", "client_closed", "upstream_error", "rejected",
    "server", "client", "connect", "cut", "protocol", "timeout",
    "active", "revoked", "expired", "user", "admin",
    "credit", "debit", "refund", "adjustment", "gateway",
    "tools", "json", "vision", "audio", "video", "reasoning", "fim",
)


@functools.cache
def js_strings(locale: str) -> str:
    t = translations(locale)
    return json.dumps({m: t.gettext(m) for m in JS_MESSAGES}, ensure_ascii=False)


def gettext_for(locale: str, message: str) -> str:
    return translations(locale).gettext(message)
