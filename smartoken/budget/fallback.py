"""Bounded fail-open (issue 12, item 9): the counters a Redis replica uses while Redis is
unreachable (``SMARTOKEN_REDIS_DOWN=open``).

One ``ShareReserver`` per outage. It loads the wallet and the key's spend from the ledger like
``MemoryReserver``, but lets this replica use only its share, 1/N, of what was left when the
outage began (N: the replicas that were heartbeating in Redis before it). "What was left" is
what the shared counters said at this replica's last heartbeat before the outage (wallet
available, key spend plus reservations in flight, read every ttl/4 for the keys this replica
served), or the ledger for a key it had not served. N replicas together therefore spend at most
what was left, instead of N times it; beyond that only what other replicas reserved between
that last heartbeat and the outage (at most ttl/4 of traffic). When Redis answers, the
replicas push what they spent here into it and use the shared counters once all have (the fence,
``redis_reserver._rejoin``); the next outage starts a new share from the ledger.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.auth.keys import KeyContext
from smartoken.budget.reserver import MemoryReserver, Reservation
from smartoken.budget.windows import Windows


class ShareReserver(MemoryReserver):
    def __init__(self, engine: AsyncEngine, windows: Windows, parts: int,
                 known_available: dict[int, int] | None = None,
                 known_used: dict[tuple[int, str], int] | None = None) -> None:
        super().__init__(engine, windows)
        self.parts = max(1, parts)
        self._known_available = dict(known_available or {})  # account -> wallet available
        self._known_used = dict(known_used or {})  # (key, window) -> spent + reserved
        self._base: dict[tuple[int, str], int] = {}  # key spend loaded here, before settles

    async def _load_wallet(self, account_id: int) -> None:
        await super()._load_wallet(account_id)
        wallet = self._wallets.get(account_id)
        if wallet is not None:
            left = self._known_available.get(account_id, wallet.balance)
            wallet.balance = max(0, left) // self.parts  # this replica's share

    def _share(self, key_id: int, window: str, limit: int | None) -> int | None:
        if limit is None:
            return None
        spent = self._keys[key_id].spent.get(window, 0)
        base = self._base.setdefault((key_id, window), spent)  # before any settle here
        left = limit - self._known_used.get((key_id, window), base)
        return base + max(0, left) // self.parts

    async def reserve(self, key: KeyContext, amount: int,
                      request_id: str = "") -> Reservation:
        _, day, month = self.windows.now()
        await self._ensure(key, day, month)
        shared = dataclasses.replace(
            key, daily_budget=self._share(key.key_id, day, key.daily_budget),
            monthly_budget=self._share(key.key_id, month, key.monthly_budget))
        return await super().reserve(shared, amount, request_id)
