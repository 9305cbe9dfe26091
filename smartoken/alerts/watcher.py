"""The alert watcher: off the request path, after settlement.

The ledger writer hands each committed batch to ``note_batch`` (a set insertion per record, in
the writer's task; the request path does nothing). A check task wakes, takes the accounts and
keys those batches moved, and reads their settings, balances and key spend:

- low balance: below the account's threshold and no alert open for it: claim one (period
  ``open``); at or above it again: close the open one (``store.rearm``), so the next fall fires;
- key budgets: spend at or past each percent of the daily and the monthly budget: claim one per
  (key, window kind, percent, day or month).

A claim is an insert under a unique key, so however many replicas (or checks) notice the same
crossing, one alert exists and is sent once. A delivery task sends the claimed alerts by mail
and signed webhook, each attempt taken under a lease (``store.lease``: one replica wins), with a
bounded timeout and retries (``AlertOptions.retry_delays``); an attempt a dead replica held is
taken again when its lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.alerts import deliver, signing, store
from smartoken.alerts.store import KEY_DAILY, KEY_MONTHLY, LOW_BALANCE, OPEN, AlertSettings
from smartoken.auth.secretbox import SecretBox
from smartoken.budget.contract import Reserver
from smartoken.ledger.records import UsageRecord
from smartoken.notify.mail import Mailer
from smartoken.store import repo

log = logging.getLogger("smartoken.alerts")
FIRED_CACHE = 50_000


@dataclass(frozen=True, slots=True)
class AlertOptions:
    retry_delays: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0)
    timeout: float = 5.0  # one webhook POST, connect included
    check_gap: float = 0.25  # at most four checks a second, whatever the traffic
    scan: float = 5.0  # how often due deliveries are looked for without a wake-up
    credit_scan: float = 1.0  # how often credits are looked for (they end low-balance alerts)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AlertOptions:
        """``SMARTOKEN_ALERT_RETRY_S`` (comma-separated delays) and
        ``SMARTOKEN_ALERT_TIMEOUT_S``; malformed values keep the defaults."""
        opts = cls()
        try:
            raw = env.get("SMARTOKEN_ALERT_RETRY_S")
            delays = tuple(float(x) for x in raw.split(",")) if raw else opts.retry_delays
            timeout = float(env.get("SMARTOKEN_ALERT_TIMEOUT_S", opts.timeout))
        except ValueError:
            log.warning("alert options: malformed SMARTOKEN_ALERT_* value; defaults kept")
            return opts
        if not all(0 < d <= 86400 for d in delays) or not 0 < timeout <= 60:
            return opts
        return cls(delays[:10], timeout, opts.check_gap, opts.scan, opts.credit_scan)


class Watcher:
    def __init__(self, engine: AsyncEngine, reserver: Reserver,
                 session: aiohttp.ClientSession | None, mailer: Mailer | None,
                 box: SecretBox | None, options: AlertOptions | None = None) -> None:
        self._engine = engine
        self._reserver = reserver
        self._session = session
        self.mailer = mailer
        self._box = box
        self.options = options or AlertOptions()
        self._accounts: set[int] = set()
        self._keys: dict[int, set[tuple[str, str]]] = {}
        self._wake = asyncio.Event()
        self._send = asyncio.Event()
        self._fired: set[tuple[str, str, int, str]] = set()
        self.checks = 0
        self.claimed = 0
        self.sent = 0
        self.failed = 0

    # ---------------------------------------------------------------- what moved

    def note_batch(self, batch: list[UsageRecord]) -> None:
        """A ledger batch committed (called in the writer's task, never per request)."""
        keys = self._keys
        for r in batch:
            if r.cost_micro:
                self._accounts.add(r.account_id)
                windows = keys.get(r.key_id)
                if windows is None:
                    keys[r.key_id] = {(r.day, r.month)}
                else:
                    windows.add((r.day, r.month))
        if self._accounts:
            self._wake.set()

    def note_accounts(self, account_ids: Iterable[int]) -> None:
        """Balances that moved outside the ledger (credits) or settings that changed."""
        self._accounts.update(account_ids)
        if self._accounts:
            self._wake.set()

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._check_loop(), name="alerts-check"),
                asyncio.create_task(self._deliver_loop(), name="alerts-deliver"),
                asyncio.create_task(self._credit_loop(), name="alerts-credits")]

    async def _credit_loop(self) -> None:
        """Credits end low-balance alerts: look for new ones every ``credit_scan`` seconds
        (one indexed query; the ledger's own debits are told by ``note_batch``)."""
        seen: int | None = None
        while True:
            try:
                top, credited = await store.credited_since(self._engine, seen or 0)
                if seen is not None:
                    self.note_accounts(credited)
                seen = top
            except Exception:
                log.warning("alert credit scan failed; retrying", exc_info=True)
            await asyncio.sleep(self.options.credit_scan)

    # ---------------------------------------------------------------- checking

    async def _check_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            accounts, self._accounts = self._accounts, set()
            keys, self._keys = self._keys, {}
            try:
                await self.check(accounts, keys)
            except Exception:  # the database is away: look again at the next wake-up
                log.warning("alert check failed; retrying", exc_info=True)
                self._accounts |= accounts
                for kid, windows in keys.items():
                    self._keys.setdefault(kid, set()).update(windows)
                await asyncio.sleep(1.0)
                self._wake.set()
            await asyncio.sleep(self.options.check_gap)

    async def check(self, accounts: set[int], keys: dict[int, set[tuple[str, str]]]) -> None:
        self.checks += 1
        engine = self._engine
        key_rows = await store.budget_keys(engine, keys) if keys else []
        wanted = accounts | {int(k["account_id"]) for k in key_rows}
        if not wanted:
            return
        settings = await store.settings_of(engine, wanted)
        claimed = await self._check_balances(
            [s for a, s in settings.items() if a in accounts and s.low_balance_micro is not None])
        for k in key_rows:
            s = settings[int(k["account_id"])]
            if s.key_percents:
                for day, month in sorted(keys.get(int(k["id"]), ())):
                    claimed += await self._check_key(k, s, day, month)
        if claimed:
            self._send.set()

    async def _check_balances(self, watched: list[AlertSettings]) -> int:
        if not watched:
            return 0
        engine = self._engine
        balances = await store.balances(engine, (s.account_id for s in watched))
        open_ = await store.open_low_balance(engine, (f"account:{s.account_id}" for s in watched))
        claimed = 0
        for s in watched:
            balance = balances.get(s.account_id)
            threshold = s.low_balance_micro
            if balance is None or threshold is None:
                continue
            subject = f"account:{s.account_id}"
            if any(sub == subject and balance >= t for sub, t in open_):
                await store.rearm(engine, s.account_id)  # closes those the balance is above
            if balance < threshold and (subject, threshold) not in open_ and await self._claim(
                    s, subject, LOW_BALANCE, threshold, OPEN, None, balance, threshold):
                claimed += 1
        return claimed

    async def _check_key(self, key: dict[str, Any], s: AlertSettings, day: str,
                         month: str) -> int:
        kid = int(key["id"])
        snap = await self._reserver.key_snapshot(kid, day, month)
        spent = snap[:2] if snap is not None else await repo.key_spend(self._engine, kid, day,
                                                                        month)
        claimed = 0
        for kind, period, budget, used in (
                (KEY_DAILY, day, key["daily_budget_micro"], spent[0]),
                (KEY_MONTHLY, month, key["monthly_budget_micro"], spent[1])):
            if not budget:
                continue
            for pct in s.key_percents:
                if used * 100 >= pct * int(budget) and await self._claim(
                        s, f"key:{kid}", kind, pct, period, kid, used, int(budget)):
                    claimed += 1
        return claimed

    async def _claim(self, s: AlertSettings, subject: str, kind: str, threshold: int,
                     period: str, key_id: int | None, value: int, limit: int) -> bool:
        slot = (subject, kind, threshold, period)
        if period != OPEN and slot in self._fired:
            return False
        email = None
        if s.email_enabled and self.mailer is not None:
            email = s.email or await store.account_email(self._engine, s.account_id)
        hook = s.webhook_url if s.webhook_secret else None
        row = {"account_id": s.account_id, "subject": subject, "kind": kind,
               "threshold": threshold, "period": period, "key_id": key_id,
               "value_micro": value, "limit_micro": limit, "created_at": repo.now(),
               "email_to": email, "email_state": "pending" if email else "none",
               "webhook_url": hook, "webhook_state": "pending" if hook else "none",
               "attempts": 0, "done": not (email or hook), "next_at": time.time()}
        event_id = await store.claim(self._engine, row)
        if period != OPEN:
            if len(self._fired) > FIRED_CACHE:
                self._fired.clear()
            self._fired.add(slot)
        if event_id is None:
            return False
        self.claimed += 1
        log.info("alert %d fired: %s %s threshold %d period %s", event_id, subject, kind,
                 threshold, period)
        return True

    # ---------------------------------------------------------------- delivering

    async def _deliver_loop(self) -> None:
        while True:
            rows: list[dict[str, Any]] = []
            wait = self.options.scan
            try:
                rows = await store.due(self._engine, time.time())
                if rows:
                    await asyncio.gather(*(self._attempt(r) for r in rows))
                nxt = await store.next_due(self._engine)
                if nxt is not None:
                    wait = min(wait, max(0.02, nxt - time.time()))
            except Exception:
                log.warning("alert delivery scan failed; retrying", exc_info=True)
            if rows:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._send.wait(), wait)
            self._send.clear()

    async def _attempt(self, event: dict[str, Any]) -> None:
        opts = self.options
        attempts = int(event["attempts"])
        if not await store.lease(self._engine, int(event["id"]), float(event["next_at"]),
                                 attempts, time.time() + 2 * opts.timeout + 30):
            return  # another replica took it
        attempts += 1
        errors: list[str] = []
        values: dict[str, Any] = {}
        if event["email_state"] == "pending":
            try:
                await self._mail(event)
                values["email_state"] = "sent"
            except Exception as exc:
                errors.append(f"email: {type(exc).__name__}: {str(exc)[:150]}")
        if event["webhook_state"] == "pending":
            try:
                await self._post(event)
                values["webhook_state"] = "sent"
            except deliver.DeliveryError as exc:
                errors.append(f"webhook: {exc}")
        if not errors:
            values.update(done=True, delivered_at=repo.now(), last_error=None)
            self.sent += 1
        elif attempts > len(opts.retry_delays):
            values.update(done=True, last_error="; ".join(errors)[:500])
            for channel in ("email_state", "webhook_state"):
                if event[channel] == "pending" and channel not in values:
                    values[channel] = "failed"
            self.failed += 1
            log.warning("alert %s not delivered after %d attempts: %s", event["id"], attempts,
                        values["last_error"])
        else:
            values.update(next_at=time.time() + opts.retry_delays[attempts - 1],
                          last_error="; ".join(errors)[:500])
        await store.finish(self._engine, int(event["id"]), values)

    async def _mail(self, event: dict[str, Any]) -> None:
        if self.mailer is None:
            raise deliver.DeliveryError("no mailer configured")
        event = await self._with_key(event)
        subject, text = deliver.mail(event)
        await asyncio.wait_for(self.mailer.send(str(event["email_to"]), subject, text),
                               self.options.timeout * 6)

    async def _post(self, event: dict[str, Any]) -> None:
        if self._session is None:
            raise deliver.DeliveryError("no HTTP session")
        s = await store.get_settings(self._engine, int(event["account_id"]))
        secret = signing.unseal(s.webhook_secret, self._box) if s.webhook_secret else None
        if secret is None:
            raise deliver.DeliveryError("the webhook secret is unavailable (rotate it)")
        event = await self._with_key(event)
        body = deliver.body_of(event)
        await deliver.post(self._session, str(event["webhook_url"]), secret, body,
                           deliver.TYPES.get(str(event["kind"]), "alert"),
                           f"alert_{event['id']}", self.options.timeout)

    async def _with_key(self, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("key_id") is None or "key_name" in event:
            return event
        key = await repo.get_key(self._engine, int(event["key_id"]))
        return {**event, "key_name": key["name"] if key else None,
                "key_prefix": key["prefix"] if key else None}
