"""Changes made through the admin and account API, applied to the database and, at once, to
the running gateway: key changes drop the key cache (a revoked key is refused on its next
request), wallet transactions move the reserver's in-memory wallet.

A wallet transaction written here carries this process's ``origin``, so the change poller
(which applies only other origins' transactions) does not count it a second time; other
processes pick it up through their pollers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smartoken.auth.keys import generate_key
from smartoken.errors import InvalidRequest
from smartoken.i18n.message import N_
from smartoken.state import AppState
from smartoken.store import repo

KINDS = frozenset({"credit", "refund", "adjustment"})


async def post_transaction(state: AppState, account_id: int, kind: str, amount: int, *,
                           actor: str, reason: str) -> tuple[int, int]:
    """Append a credit, refund or adjustment. Returns (transaction id, recorded balance).

    A negative adjustment may not take the wallet below zero, counting money reserved by
    requests in flight: it is held like a reservation while it is written.
    """
    held = 0
    if amount < 0:
        if not await state.reserver.hold(account_id, -amount):
            raise InvalidRequest(N_("This adjustment would take the wallet below zero (money "
                                    "reserved by requests in flight counts as spent)."),
                                 param="amount", code="insufficient_balance")
        held = -amount
    try:
        txn_id, balance = await repo.credit_wallet(state.engine, account_id, amount, kind=kind,
                                                   actor=actor, reason=reason,
                                                   origin=state.origin)
    finally:
        if held:
            await state.reserver.unhold(account_id, held)
    await state.reserver.apply_external([(txn_id, account_id, amount)])
    return txn_id, balance


async def create_key(state: AppState, account_id: int, fields: repo.KeyFields) -> tuple[str, int]:
    """Returns (the secret, shown this once; the key id)."""
    secret, prefix, digest = generate_key()
    key_id = await repo.insert_key(state.engine, account_id, prefix, digest, fields)
    state.keys.clear()  # a cached miss for this secret must not outlive its creation
    return secret, key_id


async def update_key(state: AppState, key_id: int, values: dict[str, Any]) -> None:
    await repo.update_key(state.engine, key_id, values)
    state.keys.clear()


async def revoke_key(state: AppState, key_id: int, when: datetime) -> None:
    row = await repo.get_key(state.engine, key_id)
    if row is not None and row["revoked_at"] is None:
        await repo.update_key(state.engine, key_id, {"revoked_at": when})
    state.keys.clear()
