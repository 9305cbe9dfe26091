"""The stops of the gateways the running test started (conftest's make_gateway/make_inproc):
a database or Redis-prefix fixture (tests/services.py) stops them before it goes, whatever
order the test named its fixtures in. Else a gateway stopped after its database was dropped
retried its final ledger flush for ~34 s (4 x 34 s of one test file's teardowns)."""

from __future__ import annotations

from collections.abc import Callable

RUNNING: list[Callable[[], object]] = []


def stop_gateways() -> None:
    while RUNNING:
        RUNNING.pop()()
