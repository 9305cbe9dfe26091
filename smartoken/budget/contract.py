"""The one contract every reserver implements (memory, SQL, Redis), and everything its callers
use: the relay (reserve/settle/release), the admin and account API and the console (hold and
unhold around a negative adjustment, the live wallet and key views, credits written here), the
change poller (credits written elsewhere) and the state's lifecycle (start/close).

The contract test suite (tests/integration/test_reserver_contract.py) runs the same checks
against each implementation.
"""

from __future__ import annotations

from typing import Protocol

from smartoken.auth.keys import KeyContext
from smartoken.budget.reserver import Reservation
from smartoken.budget.windows import Windows


class Reserver(Protocol):
    windows: Windows
    in_flight: int  # reservations of this process not yet settled (a gauge)

    async def reserve(self, key: KeyContext, amount: int,
                      request_id: str = "") -> Reservation:
        """Hold ``amount`` against the wallet and the key's budgets, or raise
        InsufficientBalance / BudgetExceeded (BudgetStoreUnavailable when the store that
        holds the counters cannot be reached)."""
        ...

    def settle(self, res: Reservation, actual: int) -> int:
        """Replace the reservation by the actual cost; returns what was charged. Idempotent,
        never awaits (runs in ``finally`` blocks)."""
        ...

    def release(self, res: Reservation) -> None: ...

    async def hold(self, account_id: int, amount: int) -> bool:
        """Set ``amount`` of the wallet aside while a debit (a negative adjustment) is written,
        if that much is available counting reservations in flight; False otherwise."""
        ...

    async def unhold(self, account_id: int, amount: int) -> None:
        """Undo ``hold`` once the transaction is written (or failed)."""
        ...

    async def apply_external(self, txns: list[tuple[int, int, int]]) -> None:
        """Wallet transactions written outside the ledger batches: (txn id, account, amount)."""
        ...

    async def snapshot(self, account_id: int) -> tuple[int, int] | None:
        """(balance including settled-unwritten debits, reserved now), or None when this
        reserver has no live view of the wallet (callers use the recorded balance)."""
        ...

    async def key_snapshot(self, key_id: int, day: str,
                           month: str) -> tuple[int, int, int] | None:
        """(spent today, spent this month, reserved now) of a key, or None when unknown
        (callers read the ledger)."""
        ...

    def forget_key(self, key_id: int) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
