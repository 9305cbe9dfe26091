"""Reserve, then settle: the no-overspend guarantee.

Before an upstream call the worst-case cost is reserved against the account's wallet and the
key's daily and monthly budgets in one step; on completion the reservation is settled to the
actual cost and the rest released. ``MemoryReserver`` keeps the counters in this process: with
one worker on the embedded default, every check-and-reserve runs without an ``await`` between
check and update, so it is atomic under asyncio. Counters are loaded once per account/key from
the ledger (the wallet balance and the key's spend in the current windows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.auth.keys import KeyContext
from smartoken.budget.windows import Windows
from smartoken.errors import BudgetExceeded, InsufficientBalance
from smartoken.money import format_usd
from smartoken.store import repo


@dataclass(slots=True)
class Reservation:
    key_id: int
    account_id: int
    amount: int
    day: str
    month: str
    started_at: float
    done: bool = False
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
    def __init__(self, engine: AsyncEngine, windows: Windows) -> None:
        self._engine = engine
        self.windows = windows
        self._wallets: dict[int, _Wallet] = {}
        self._keys: dict[int, _KeySpend] = {}
        self._loading: dict[tuple[str, int], asyncio.Future[None]] = {}
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
        balance, top = await repo.wallet_snapshot(self._engine, account_id)
        if account_id not in self._wallets:
            self._wallets[account_id] = _Wallet(balance, loaded_txn_id=top)

    async def _load_key(self, key_id: int, day: str, month: str) -> None:
        d, m = await repo.key_spend(self._engine, key_id, day, month)
        spend = self._keys.setdefault(key_id, _KeySpend())
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
        return Reservation(key.key_id, key.account_id, amount, day, month, ts, id=request_id)

    def settle(self, res: Reservation, actual: int) -> None:
        """Replace the reservation by the actual cost (0 releases it). Idempotent."""
        if res.done:
            return
        res.done = True
        self.in_flight -= 1
        wallet = self._wallets[res.account_id]
        spend = self._keys[res.key_id]
        wallet.reserved -= res.amount
        wallet.balance -= actual
        for window in (res.day, res.month):
            spend.reserved[window] -= res.amount
            spend.spent[window] = spend.spent.get(window, 0) + actual

    def release(self, res: Reservation) -> None:
        self.settle(res, 0)

    def apply_external(self, txns: list[tuple[int, int, int]]) -> None:
        """Apply wallet transactions written by other processes: (txn id, account, amount)."""
        for txn_id, account_id, amount in txns:
            wallet = self._wallets.get(account_id)
            if wallet is not None and txn_id > wallet.loaded_txn_id:
                wallet.balance += amount

    def forget_key(self, key_id: int) -> None:
        spend = self._keys.get(key_id)
        if spend is not None and not any(spend.reserved.values()):
            del self._keys[key_id]

    def snapshot(self, account_id: int) -> tuple[int, int] | None:
        wallet = self._wallets.get(account_id)
        return None if wallet is None else (wallet.balance, wallet.reserved)
