"""Messages written in Python (form errors, error pages) that a console page shows in the
reader's language. ``N_("The %(label)s must be a date.", label=...)`` is the English string
itself (a ``str``: the API, logs and tests see the English text as before) that also keeps its
gettext template and values, so ``translate`` can look the template up in the locale's catalog
and fill the same values in. Values that are ``Msg`` themselves are translated too. The
templates are extracted like the templates' strings (keyword ``N_``)."""

from __future__ import annotations

from typing import Any

from smartoken.i18n.catalog import translations


class Msg(str):
    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, **values: Any) -> Msg:
        self = super().__new__(cls, template % values if values else template)
        self.template, self.values = template, values
        return self


def N_(template: str, **values: Any) -> Msg:
    return Msg(template, **values)


def translate(text: str, locale: str) -> str:
    """``text`` in ``locale``: a ``Msg`` by its template, a plain string when it is itself a
    message of the catalog; else unchanged (the English text, never an empty one)."""
    t = translations(locale)
    if not isinstance(text, Msg):
        return t.gettext(text) if text else text
    template = t.gettext(text.template)
    if not text.values:
        return template
    values = {k: translate(v, locale) if isinstance(v, Msg) else v
              for k, v in text.values.items()}
    try:
        return template % values
    except (KeyError, TypeError, ValueError):  # a broken translation: the English text
        return str.__str__(text)


def translated(text: str, locale: str) -> bool:
    """Whether ``text`` reads fully in ``locale`` (its template has a translation)."""
    msgid = text.template if isinstance(text, Msg) else text
    return bool(msgid) and translations(locale).gettext(msgid) != msgid
