"""The four reserver set-ups every contract-level test runs under (issue 12, item 3): the
in-process ``memory`` reserver on SQLite, the ``sql`` reserver on SQLite and on PostgreSQL, and
the ``redis`` reserver on PostgreSQL. ``reserver_env`` gives the gateway environment; use it with
``make_inproc`` (one process is enough: the contract is the same with one replica or several)."""

from __future__ import annotations

import pytest

from tests.services import REDIS_URL

RESERVERS = ("memory", "sql-sqlite", "sql-pg", "redis")
# For a test that does not depend on the reserver (key expiry, roles, usage queries): run it once.
MEMORY_ONLY = pytest.mark.parametrize("reserver_env", ["memory"], indirect=True)


@pytest.fixture(params=RESERVERS)
def reserver_env(request: pytest.FixtureRequest) -> dict[str, str]:
    kind = str(request.param)
    if kind == "memory":
        return {"SMARTOKEN_RESERVER": "memory"}
    if kind == "sql-sqlite":
        return {"SMARTOKEN_RESERVER": "sql"}
    env = {"SMARTOKEN_DATABASE_URL": str(request.getfixturevalue("pg_migrated_url"))}
    if kind == "sql-pg":
        return {**env, "SMARTOKEN_RESERVER": "sql"}
    return {**env, "SMARTOKEN_RESERVER": "redis", "SMARTOKEN_REDIS_URL": REDIS_URL,
            "SMARTOKEN_REDIS_PREFIX": str(request.getfixturevalue("redis_prefix"))}
