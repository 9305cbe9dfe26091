"""Validation of admin and account API input: JSON bodies and query strings.

Every problem raises ``InvalidRequest`` naming the field, before anything is changed. Money is
an exact USD string ("12.50") or an integer; floats are refused (they cannot carry an exact
amount). Times are ISO 8601 or Unix seconds; a time without a zone is UTC.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from smartoken.errors import InvalidRequest, NotFound
from smartoken.i18n.message import N_
from smartoken.money import MoneyError, parse_usd
from smartoken.protocols import wire
from smartoken.store.repo import UsageFilter

BODY_LIMIT = 64 * 1024
NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,100}$")
MAX_PAGE = 1000
MAX_EXPORT = 100_000
MAX_MICRO = 10**15  # one billion dollars: far above any budget, far below BIGINT
MAX_ID = 2**31 - 1  # ids are INTEGER columns: a larger one is no row, never a database error


def row_id(value: int, what: str, param: str) -> int:
    """An id from a path or a body: one that no row can have is a 404, not a query."""
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"No {what} with id {value}.", param=param,
                       code="account_not_found" if what == "account" else "key_not_found")
    return value


def _nul_in(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if depth > 64:
        return False
    if isinstance(value, dict):
        return any(_nul_in(k, depth + 1) or _nul_in(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_nul_in(v, depth + 1) for v in value)
    return False


def body(raw: bytes, allowed: Collection[str], required: Collection[str] = ()) -> wire.JSON:
    data = wire.parse_json(raw)
    for name, value in data.items():
        if _nul_in(name) or _nul_in(value):  # PostgreSQL text cannot hold one
            raise InvalidRequest(f"'{name[:40]!r}' contains a NUL character.", param=name,
                                 code="invalid_value")
    for name in data:
        if name not in allowed:
            raise InvalidRequest(f"Unknown field '{name}'. Allowed: {', '.join(sorted(allowed))}.",
                                 param=name, code="unknown_parameter")
    for name in required:
        if data.get(name) is None:
            raise InvalidRequest(f"Missing required field '{name}'.", param=name,
                                 code="missing_required_parameter")
    return data


def usd(value: Any, name: str, *, allow_negative: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRequest(f"'{name}' must be a USD amount as a string (\"12.50\") or an "
                             f"integer, not {type(value).__name__}.", param=name,
                             code="invalid_type")
    try:
        micro = parse_usd(value.strip() if isinstance(value, str) else value)
    except MoneyError as exc:
        raise InvalidRequest(f"'{name}': {exc}.", param=name, code="invalid_amount") from None
    if micro < 0 and not allow_negative:
        raise InvalidRequest(N_("'%(name)s' must not be negative.", name=name), param=name,
                             code="invalid_amount")
    if abs(micro) > MAX_MICRO:
        raise InvalidRequest(N_("'%(name)s' is too large.", name=name), param=name,
                             code="invalid_amount")
    return int(micro)


def opt_usd(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    return None if value is None else usd(value, name)


def opt_limit(data: Mapping[str, Any], name: str) -> int | None:
    """A positive integer limit (rpm, tpm), or None for no limit."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10**9:
        raise InvalidRequest(f"'{name}' must be a positive integer or null.", param=name,
                             code="invalid_type")
    return value


def text(data: Mapping[str, Any], name: str, max_len: int, default: str = "") -> str:
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > max_len:
        raise InvalidRequest(f"'{name}' must be a string of at most {max_len} characters.",
                             param=name, code="invalid_type")
    return value


def account_name(data: Mapping[str, Any]) -> str:
    value = data.get("name")
    if not isinstance(value, str) or not NAME.match(value):
        raise InvalidRequest("'name' must be 1-100 letters, digits or . _ @ + -.", param="name",
                             code="invalid_value")
    return value


def role(data: Mapping[str, Any], default: str = "user") -> str:
    value = data.get("role", default)
    if value not in ("user", "admin"):
        raise InvalidRequest("'role' must be 'user' or 'admin'.", param="role",
                             code="invalid_value")
    return str(value)


def families(data: Mapping[str, Any], known: Collection[str]) -> list[str] | None:
    value = data.get("families")
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(f, str) for f in value):
        raise InvalidRequest("'families' must be a non-empty list of family names, or null "
                             "for every family.", param="families", code="invalid_type")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise InvalidRequest(f"Unknown model families: {', '.join(unknown)}.",
                             param="families", code="invalid_value")
    return sorted(set(value))


def when(value: Any, name: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            try:
                dt = datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
        else:
            return when(number, name)
    raise InvalidRequest(f"'{name}' must be an ISO 8601 time or Unix seconds.", param=name,
                         code="invalid_value")


def expiry(data: Mapping[str, Any]) -> tuple[bool, datetime | None]:
    """(whether the body sets the expiry, the expiry). ``expires_in`` is seconds from now."""
    if "expires_in" in data and data["expires_in"] is not None:
        if "expires_at" in data:
            raise InvalidRequest("Give either 'expires_at' or 'expires_in', not both.",
                                 param="expires_in", code="invalid_value")
        seconds = data["expires_in"]
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not \
                0 < seconds <= 100 * 365 * 86400:
            raise InvalidRequest("'expires_in' must be a positive number of seconds.",
                                 param="expires_in", code="invalid_type")
        return True, datetime.now(UTC) + timedelta(seconds=seconds)
    if "expires_at" in data:
        value = data["expires_at"]
        return True, None if value is None else when(value, "expires_at")
    return False, None


# ---------------------------------------------------------------- query strings


def query_int(query: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise InvalidRequest(f"'{name}' must be an integer from {lo} to {hi}.", param=name,
                             code="invalid_value")
    return value


def query_id(query: Mapping[str, str], name: str) -> int | None:
    if not query.get(name):
        return None
    return query_int(query, name, 0, 1, 2**31 - 1)


USAGE_PARAMS = frozenset({"account_id", "key_id", "model", "status", "since", "until", "limit",
                          "offset"})
STATUSES = frozenset({"ok", "partial", "client_closed", "upstream_error", "rejected"})


def usage_filter(query: Mapping[str, str], *, export: bool,
                 account_id: int | None = None) -> UsageFilter:
    """Filters for usage listings. ``account_id`` given pins the listing to that account."""
    for name in query:
        if name not in USAGE_PARAMS:
            raise InvalidRequest(f"Unknown query parameter '{name}'.", param=name,
                                 code="unknown_parameter")
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"'status' must be one of {', '.join(sorted(STATUSES))}.",
                             param="status", code="invalid_value")
    since = when(query["since"], "since") if query.get("since") else None
    until = when(query["until"], "until") if query.get("until") else None
    if account_id is None:
        account_id = query_id(query, "account_id")
    elif query.get("account_id") and query_id(query, "account_id") != account_id:
        raise InvalidRequest("An account key may only read its own account's usage.",
                             param="account_id", code="invalid_value")
    max_rows = MAX_EXPORT if export else MAX_PAGE
    return UsageFilter(
        account_id=account_id, key_id=query_id(query, "key_id"),
        model=query.get("model") or None, status=status, since=since, until=until,
        limit=query_int(query, "limit", max_rows if export else 100, 1, max_rows),
        offset=query_int(query, "offset", 0, 0, 10**9))
