"""What an alert says and how it travels: the webhook's JSON body and signed POST, the mail's
subject and text. Nothing here logs or returns a webhook URL's path or query (a URL such as a
chat service's incoming webhook is a secret in itself) or the signing secret."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from smartoken.alerts import signing
from smartoken.alerts.store import KEY_DAILY, LOW_BALANCE
from smartoken.money import format_usd
from smartoken.providers.egress import EgressPolicy

MAX_URL = 2000
USER_AGENT = "SmarToken-Alerts/1"
TYPES = {LOW_BALANCE: "balance.low", KEY_DAILY: "key.budget.daily",
         "key_monthly": "key.budget.monthly"}
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


class DeliveryError(Exception):
    """One attempt failed; the message is safe to store and show (no URL path, no secret)."""


def url_refusal(url: str, policy: EgressPolicy) -> str | None:
    """Why ``url`` cannot be a webhook, or None."""
    if len(url) > MAX_URL or _UNSAFE.search(url) or not url.isascii():
        return f"The webhook URL must be at most {MAX_URL} printable ASCII characters."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return "The webhook URL is not a valid URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The webhook URL must be an http:// or https:// URL with a host."
    if parts.username or parts.password:
        return "The webhook URL must not hold a user name or password."
    refusal = policy.url_refusal(url)
    if refusal:
        return f"The webhook URL is refused: {refusal}."
    return None


def where(url: str | None) -> str:
    """The URL as it may be shown in a history or a log: scheme and host only."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "(invalid URL)"


def _plain(text: str | None, limit: int = 60) -> str:
    return _UNSAFE.sub("?", text or "")[:limit]


def payload(event: dict[str, Any]) -> dict[str, Any]:
    kind = str(event["kind"])
    created: datetime = event["created_at"]
    if created.tzinfo is None:  # SQLite gives naive UTC times back
        created = created.replace(tzinfo=UTC)
    data: dict[str, Any]
    if kind == LOW_BALANCE:
        data = {"threshold": format_usd(int(event["limit_micro"])),
                "balance": format_usd(int(event["value_micro"]))}
    else:
        data = {"key_id": event["key_id"], "key_name": event.get("key_name"),
                "key_prefix": event.get("key_prefix"), "period": event["period"],
                "percent": int(event["threshold"]),
                "budget": format_usd(int(event["limit_micro"])),
                "spent": format_usd(int(event["value_micro"]))}
    return {"id": f"alert_{event['id']}", "object": "event", "type": TYPES.get(kind, kind),
            "created": int(created.timestamp()), "account_id": event["account_id"],
            "data": data}


def mail(event: dict[str, Any]) -> tuple[str, str]:
    """(subject, text) of the alert's mail."""
    kind = str(event["kind"])
    value, limit = int(event["value_micro"]), int(event["limit_micro"])
    if kind == LOW_BALANCE:
        subject = f"SmarToken: your balance is below ${format_usd(limit)}"
        text = (f"Your SmarToken balance is ${format_usd(value)}, below your alert threshold of "
                f"${format_usd(limit)}.\n\nTop up or ask your administrator for credit before "
                "requests are refused. This alert is sent once, until the balance is back at "
                "or above the threshold.\n")
        return subject, text
    window = "daily" if kind == KEY_DAILY else "monthly"
    name = _plain(event.get("key_name")) or f"#{event['key_id']}"
    subject = f"SmarToken: key {name} reached {int(event['threshold'])}% of its {window} budget"
    text = (f"The API key {name} ({_plain(event.get('key_prefix'), 24)}…) has spent "
            f"${format_usd(value)} of its {window} budget of ${format_usd(limit)} for "
            f"{event['period']} ({int(event['threshold'])}% threshold).\n\n"
            f"Requests that would pass the budget are refused until the {window} window ends "
            "or the budget is raised. This alert is sent once per window.\n")
    return subject, text


async def post(session: aiohttp.ClientSession, url: str, secret: str, body: bytes,
               event_type: str, delivery: str, limit_s: float) -> None:
    """One signed POST; raises ``DeliveryError`` unless the receiver answers 2xx in time.
    Redirects are not followed (a 3xx is a failure)."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               signing.HEADER: signing.signature(secret, body),
               "X-SmarToken-Event": event_type, "X-SmarToken-Delivery": delivery}
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=limit_s,
                                                              connect=limit_s)) as resp:
            if not 200 <= resp.status < 300:
                raise DeliveryError(f"{where(url)} answered HTTP {resp.status}")
    except TimeoutError:
        raise DeliveryError(f"{where(url)} did not answer within {limit_s:g} s") from None
    except (aiohttp.ClientError, OSError) as exc:
        reason = "refused by the egress policy" if "private address" in str(exc) else \
            type(exc).__name__
        raise DeliveryError(f"{where(url)} unreachable: {reason}") from None


def body_of(event: dict[str, Any]) -> bytes:
    return orjson.dumps(payload(event))
