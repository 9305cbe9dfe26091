"""Make a usage record storable whatever the upstream or the client put in its text.

PostgreSQL refuses a NUL character in text and a driver refuses a lone surrogate (not valid
UTF-8); a string longer than its column fails the whole batch on PostgreSQL. One such value in
an upstream's error text used to make every ledger batch fail, forever. ``sanitise`` runs once
when a record is queued (``LedgerWriter.record``): NUL and other C0 controls except tab and
newline are dropped, lone surrogates become ``?``, each text field is cut to its column's
length (free text to ``TEXT_LIMIT``), and counts are kept within their 32-bit columns. ASCII
values without control characters, the usual case, are checked with two C-level calls.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from smartoken.ledger.records import UsageRecord
from smartoken.store.schema import usage_records

TEXT_LIMIT = 4000  # characters kept of a free-text field (the error)
ATTEMPTS_LIMIT = 16_000  # characters of the attempts JSON
ATTEMPT_ERROR_LIMIT = 500  # characters of each attempt's error when the JSON is too long
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# text fields and their bound: the column's declared length, or a limit for TEXT columns
LIMITS: dict[str, int] = {
    c.name: int(getattr(c.type, "length", None) or TEXT_LIMIT)
    for c in usage_records.c
    if c.type.python_type is str and c.name != "attempts"
}


# integer columns that are not money (32-bit on PostgreSQL): an upstream may report anything
INT_LIMIT = 2**31 - 1
INTS = tuple(c.name for c in usage_records.c
             if c.type.python_type is int and c.name != "cost_micro")
COST_LIMIT = 2**63 - 1


def clean(value: str, limit: int) -> str:
    """``value`` without control characters (tab and newline kept), valid UTF-8, at most
    ``limit`` characters."""
    if not (value.isascii() and value.isprintable()):
        value = _CONTROLS.sub("", value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            value = value.encode("utf-8", "replace").decode("utf-8")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _attempts(value: str) -> str:
    value = clean(value, len(value))
    if len(value) <= ATTEMPTS_LIMIT:
        return value
    try:
        items: Any = orjson.loads(value)
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("error"), str):
                item["error"] = clean(item["error"], ATTEMPT_ERROR_LIMIT)
        while items and len(out := orjson.dumps(items).decode()) > ATTEMPTS_LIMIT:
            items = items[: len(items) // 2]
        return out if items else "[]"
    except (ValueError, TypeError):
        return "[]"


def sanitise(rec: UsageRecord) -> UsageRecord:
    """Clean ``rec``'s text fields in place (see the module's docstring); returns it."""
    for name, limit in LIMITS.items():
        value = getattr(rec, name)
        if isinstance(value, str) and (len(value) > limit or not (
                value.isascii() and value.isprintable())):
            setattr(rec, name, clean(value, limit))
    if rec.attempts is not None and (len(rec.attempts) > ATTEMPTS_LIMIT
                                     or not rec.attempts.isascii()
                                     or not rec.attempts.isprintable()):
        rec.attempts = _attempts(rec.attempts)
    for name in INTS:
        value = getattr(rec, name)
        if value is not None and not 0 <= value <= INT_LIMIT:
            setattr(rec, name, min(max(value, 0), INT_LIMIT))
    if not -COST_LIMIT <= rec.cost_micro <= COST_LIMIT:
        rec.cost_micro = max(min(rec.cost_micro, COST_LIMIT), -COST_LIMIT)
    return rec
