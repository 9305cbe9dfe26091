"""Reading and changing alert settings, shared by the account API and the console: one
validation, one view. A webhook URL set for the first time gets a secret, shown that once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.alerts import deliver, signing, store
from smartoken.alerts.store import AlertSettings
from smartoken.auth.secretbox import SecretBox
from smartoken.errors import InvalidRequest
from smartoken.money import format_usd
from smartoken.providers.egress import EgressPolicy

MAX_PERCENTS = 5
MAX_THRESHOLD = 10**15  # micro-USD: one billion dollars
_EMAIL = re.compile(r"^[^@\s<>\"(),;:\\\[\]]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{2,63}$")


@dataclass(slots=True)
class Changes:
    values: dict[str, Any]
    new_secret: str | None = None  # to show once


def email(value: str) -> str:
    value = value.strip()
    if len(value) > 320 or not _EMAIL.match(value) or not value.isascii():
        raise InvalidRequest("The alert email must be one address such as ops@example.com.",
                             param="email", code="invalid_value")
    return value


def percents(values: list[Any]) -> tuple[int, ...]:
    if len(values) > MAX_PERCENTS or not all(
            isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 100 for p in values):
        raise InvalidRequest(f"Budget alert percents are up to {MAX_PERCENTS} whole numbers "
                             "from 1 to 100 (for example 80 and 100).",
                             param="key_budget_percents", code="invalid_value")
    return tuple(sorted(set(values)))


def threshold(micro: int | None) -> int | None:
    if micro is not None and not 0 < micro <= MAX_THRESHOLD:
        raise InvalidRequest("The low-balance threshold must be more than $0.",
                             param="low_balance_threshold", code="invalid_amount")
    return micro


def webhook(url: str | None, policy: EgressPolicy) -> str | None:
    if url is None or not url.strip():
        return None
    url = url.strip()
    refusal = deliver.url_refusal(url, policy)
    if refusal:
        raise InvalidRequest(refusal, param="webhook_url", code="invalid_webhook_url")
    return url


async def apply(engine: AsyncEngine, account_id: int, values: dict[str, Any],
                box: SecretBox | None) -> Changes:
    """Save ``values`` (validated columns); a webhook URL with no secret yet gets one."""
    out = Changes(dict(values))
    if out.values.get("webhook_url"):
        current = await store.get_settings(engine, account_id)
        if current.webhook_secret is None:
            out.new_secret = signing.new_secret()
            out.values["webhook_secret"] = signing.seal(out.new_secret, box)
    if out.values:
        await store.save_settings(engine, account_id, out.values)
    return out


async def rotate(engine: AsyncEngine, account_id: int, box: SecretBox | None) -> str:
    secret = signing.new_secret()
    await store.save_settings(engine, account_id, {"webhook_secret": signing.seal(secret, box)})
    return secret


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite gives naive UTC times back
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def view(s: AlertSettings, account_email: str | None) -> dict[str, Any]:
    return {"object": "alert_settings", "account_id": s.account_id,
            "low_balance_threshold": None if s.low_balance_micro is None
            else format_usd(s.low_balance_micro),
            "key_budget_percents": list(s.key_percents),
            "email": s.email, "email_enabled": s.email_enabled,
            "email_recipient": (s.email or account_email) if s.email_enabled else None,
            "webhook_url": s.webhook_url, "webhook_secret_set": s.webhook_secret is not None,
            "signature_header": signing.HEADER}


def event_view(row: dict[str, Any]) -> dict[str, Any]:
    event = deliver.payload(row)
    event.update(created_at=iso(row["created_at"]), delivered_at=iso(row["delivered_at"]),
                 email_state=row["email_state"], webhook_state=row["webhook_state"],
                 webhook=deliver.where(row["webhook_url"]) or None,
                 attempts=row["attempts"], done=bool(row["done"]),
                 last_error=row["last_error"])
    return event
