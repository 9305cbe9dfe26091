"""Reserve, then settle: the no-overspend guarantee.

Before an upstream call the worst-case cost is reserved against the account's wallet and the
key's daily and monthly budgets in one step; on completion the reservation is settled to the
actual cost and the rest released. ``MemoryReserver`` keeps the counters in this process: with
one worker on the embedded default, every check-and-reserve runs without an ``await`` between
check and update, so it is atomic under asyncio. Counters are loaded once per account/key from
the ledger (the wallet balance and the key's spend in the current windows).

Every code path settles its reservation in a ``finally`` block. As a safety net, a reservation
still open after ``ttl`` (longer than any request may run) is released by ``expire``; if its
request settles after all, the actual cost is still counted. Reservations live only in this
process: when it is killed they vanish with it, and the next process rebuilds the counters
from the ledger (nothing to reconcile in the database, which only ever holds settled costs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.auth.keys import KeyContext
from smartoken.budget.windows import Windows
from smartoken.errors import BudgetExceeded, InsufficientBalance
from smartoken.money import format_usd
from smartoken.store import repo

log = logging.getLogger("smartoken.budget")
# Longer than any request may live (the longest upstream total timeout is 600 s by default).
RESERVATION_TTL = 900.0


@dataclass(slots=True)
class Reservation:
    key_id: int
    account_id: int
    amount: int
    day: str
    month: str
    started_at: float
    done: bool = False
    expired: bool = False  # released by ``expire``; a late settle still counts the cost
    seq: int = 0
    born: float = 0.0  # time.monotonic() at reservation
    daily_limit: int | None = None  # the key's budgets when reserved, to bound an over-count
    monthly_limit: int | None = None
    id: str = ""  # the request id, when the caller gave it (shared reservers need it)


@dataclass(slots=True)
class _Wallet:
    balance: int  # ledger balance, including settled debits not yet flushed
    reserved: int = 0
    loaded_txn_id: int = 0


@dataclass(slots=True)
class _KeySpend:
    spent: dict[str, int] = field(default_factory=dict)  # window id -> settled spend
    reserved: dict[str, int] = field(default_factory=dict)  # window id -> in-flight reservations


class MemoryReserver:
    def __init__(self, engine: AsyncEngine, windows: Windows,
                 ttl: float = RESERVATION_TTL) -> None:
        self._engine = engine
        self.windows = windows
        self.ttl = ttl
        self._live: dict[int, Reservation] = {}
        self._seq = 0
        self._wallets: dict[int, _Wallet] = {}
        self._keys: dict[int, _KeySpend] = {}
        self._loading: dict[tuple[str, int], asyncio.Future[None]] = {}
        # Transactions that arrived while their wallet was loading: (txn id, amount).
        self._pending: dict[int, list[tuple[int, int]]] = {}
        self.in_flight = 0

    # -------------------------------------------------------------- loading

    async def _ensure(self, key: KeyContext, day: str, month: str) -> None:
        if key.account_id not in self._wallets:
            await self._once(("wallet", key.account_id), lambda: self._load_wallet(key.account_id))
        spend = self._keys.get(key.key_id)
        if spend is None or day not in spend.spent or month not in spend.spent:
            await self._once(("key", key.key_id), lambda: self._load_key(key.key_id, day, month))

    async def _once(self, what: tuple[str, int], load: Callable[[], Awaitable[None]]) -> None:
        """Run one load per counter even when many first requests arrive together."""
        task = self._loading.get(what)
        if task is None:
            task = asyncio.ensure_future(load())
            self._loading[what] = task
            task.add_done_callback(lambda _t: self._loading.pop(what, None))
        await task

    async def _load_wallet(self, account_id: int) -> None:
        try:
            balance, top = await repo.wallet_snapshot(self._engine, account_id)
            if account_id not in self._wallets:
                # A transaction applied while the snapshot was read counts once: only when
                # the snapshot did not include it.
                balance += sum(amount for txn_id, amount in self._pending.get(account_id, ())
                               if txn_id > top)
                self._wallets[account_id] = _Wallet(balance, loaded_txn_id=top)
        finally:
            self._pending.pop(account_id, None)

    async def ensure_wallet(self, account_id: int) -> None:
        if account_id not in self._wallets:
            await self._once(("wallet", account_id), lambda: self._load_wallet(account_id))

    async def _load_key(self, key_id: int, day: str, month: str) -> None:
        d, m = await repo.key_spend(self._engine, key_id, day, month)
        spend = self._keys.setdefault(key_id, _KeySpend())
        for window in [w for w in spend.spent if w not in (day, month)]:
            if not spend.reserved.get(window):  # a past window with nothing in flight
                spend.spent.pop(window)
                spend.reserved.pop(window, None)
        spend.spent.setdefault(day, d)
        spend.spent.setdefault(month, m)

    # -------------------------------------------------------------- the guarantee

    async def reserve(self, key: KeyContext, amount: int,
                      request_id: str = "") -> Reservation:
        ts, day, month = self.windows.now()
        if key.account_id not in self._wallets or key.key_id not in self._keys or \
                day not in self._keys[key.key_id].spent or \
                month not in self._keys[key.key_id].spent:
            await self._ensure(key, day, month)
        # From here to the end: no await, so check and reserve are one atomic step.
        wallet = self._wallets[key.account_id]
        spend = self._keys[key.key_id]
        available = wallet.balance - wallet.reserved
        if amount > available:
            raise InsufficientBalance(
                f"Insufficient wallet balance: this request may cost up to ${format_usd(amount)}"
                f" and ${format_usd(max(available, 0))} is available. Credit the wallet or "
                "lower max_tokens."
            )
        for window, limit, label in ((day, key.daily_budget, "daily"),
                                     (month, key.monthly_budget, "monthly")):
            if limit is None:
                continue
            used = spend.spent.get(window, 0) + spend.reserved.get(window, 0)
            if used + amount > limit:
                raise BudgetExceeded(
                    f"The key's {label} budget of ${format_usd(limit)} would be exceeded: "
                    f"${format_usd(used)} is spent or reserved in {window} and this request may "
                    f"cost up to ${format_usd(amount)}.",
                    param=f"{label}_budget",
                )
        wallet.reserved += amount
        spend.reserved[day] = spend.reserved.get(day, 0) + amount
        spend.reserved[month] = spend.reserved.get(month, 0) + amount
        self.in_flight += 1
        self._seq += 1
        res = Reservation(key.key_id, key.account_id, amount, day, month, ts, seq=self._seq,
                          born=time.monotonic(), daily_limit=key.daily_budget,
                          monthly_limit=key.monthly_budget, id=request_id)
        self._live[self._seq] = res
        return res

    def settle(self, res: Reservation, actual: int) -> int:
        """Replace the reservation by the actual cost (0 releases it); returns what was charged.

        The actual cost is charged in full, also when the upstream reported more than was
        reserved (its tokenizer or media formula counted more than ours): the operator pays
        the upstream that much, so the wallet and the key's spend say so. The wallet may then
        go below zero and a budget past its limit by that one request; the next reservation is
        refused. The excess is counted by the caller (``smartoken_overrun_micro_usd_total``).
        Idempotent.
        """
        if res.done:
            return 0
        res.done = True
        wallet = self._wallets[res.account_id]
        spend = self._keys[res.key_id]
        if not res.expired:
            self._unreserve(res)
        wallet.balance -= actual
        for window in (res.day, res.month):
            spend.spent[window] = spend.spent.get(window, 0) + actual
        return actual

    def _unreserve(self, res: Reservation) -> None:
        self._live.pop(res.seq, None)
        self.in_flight -= 1
        self._wallets[res.account_id].reserved -= res.amount
        reserved = self._keys[res.key_id].reserved
        for window in (res.day, res.month):
            reserved[window] -= res.amount

    def release(self, res: Reservation) -> None:
        self.settle(res, 0)

    def expire(self, now: float | None = None) -> int:
        """Release reservations older than ``ttl`` whose request never settled (a bug or a
        stuck task; a killed process loses its reservations with it). Returns how many."""
        cutoff = (time.monotonic() if now is None else now) - self.ttl
        stale = [r for r in self._live.values() if r.born < cutoff]
        for res in stale:
            self._unreserve(res)
            res.expired = True
            log.warning("reservation of $%s for key %d expired unsettled; released",
                        format_usd(res.amount), res.key_id)
        return len(stale)

    async def run_expiry(self, interval: float = 30.0) -> None:
        """Background loop (started by ``AppState``): expire stale reservations."""
        while True:
            await asyncio.sleep(interval)
            self.expire()

    async def apply_external(self, txns: list[tuple[int, int, int]]) -> None:
        """Apply wallet transactions written by other processes: (txn id, account, amount)."""
        for txn_id, account_id, amount in txns:
            wallet = self._wallets.get(account_id)
            if wallet is not None:
                if txn_id > wallet.loaded_txn_id:
                    wallet.balance += amount
            elif ("wallet", account_id) in self._loading:
                self._pending.setdefault(account_id, []).append((txn_id, amount))

    async def hold(self, account_id: int, amount: int) -> bool:
        """Set ``amount`` of the wallet aside (for a debit being written), if available."""
        await self.ensure_wallet(account_id)
        # From here: no await, so the check and the hold are one atomic step.
        wallet = self._wallets[account_id]
        if amount > wallet.balance - wallet.reserved:
            return False
        wallet.reserved += amount
        return True

    async def unhold(self, account_id: int, amount: int) -> None:
        self._wallets[account_id].reserved -= amount

    async def key_snapshot(self, key_id: int, day: str, month: str) -> tuple[int, int, int] | None:
        """(spent today, spent this month, reserved now) for a loaded key, else None."""
        spend = self._keys.get(key_id)
        if spend is None or day not in spend.spent or month not in spend.spent:
            return None
        return spend.spent[day], spend.spent[month], spend.reserved.get(day, 0)

    def forget_key(self, key_id: int) -> None:
        spend = self._keys.get(key_id)
        if spend is not None and not any(spend.reserved.values()):
            del self._keys[key_id]

    async def snapshot(self, account_id: int) -> tuple[int, int] | None:
        wallet = self._wallets.get(account_id)
        return None if wallet is None else (wallet.balance, wallet.reserved)

    async def start(self) -> None:
        """Nothing to start: ``AppState`` runs ``run_expiry``."""

    async def close(self) -> None:
        pass
