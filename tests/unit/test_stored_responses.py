"""Stored Responses answers: per account, expiring after the retention period, deletable; and
the ``responses_retention_days`` setting."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from smartoken.config import ConfigError, load_settings
from smartoken.store import responses as stored
from smartoken.store.db import make_engine, migrate
from smartoken.store.schema import stored_responses


def test_save_get_delete_per_account_and_expiry(tmp_path: Path) -> None:
    async def run() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
        try:
            await migrate(engine)
            body = {"id": "resp_a", "output": [{"type": "message", "id": "m"}]}
            await stored.save(engine, 1, 7, body, [{"role": "user", "content": "q"}],
                              timedelta(days=1))
            got = await stored.get(engine, 1, "resp_a")
            assert got is not None and got.body == body
            assert got.conversation == [{"role": "user", "content": "q"}, body["output"][0]]
            assert await stored.get(engine, 2, "resp_a") is None  # another account
            assert not await stored.remove(engine, 2, "resp_a")
            await stored.save(engine, 1, 7, {"id": "resp_old", "output": []}, [],
                              timedelta(seconds=-1))
            assert await stored.get(engine, 1, "resp_old") is None  # expired
            await stored.save(engine, 1, 7, {"id": "resp_b", "output": []}, [],
                              timedelta(days=1))
            async with engine.connect() as conn:  # the expired row was purged by that save
                ids = set((await conn.execute(select(stored_responses.c.id))).scalars())
            assert ids == {"resp_a", "resp_b"}
            assert await stored.remove(engine, 1, "resp_a")
            assert await stored.get(engine, 1, "resp_a") is None
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_retention_setting(tmp_path: Path) -> None:
    assert load_settings(None, env={}).responses_retention_days == 30
    cfg = tmp_path / "c.yaml"
    cfg.write_text("responses_retention_days: 0\n")
    assert load_settings(cfg, env={}).responses_retention_days == 0
    cfg.write_text("responses_retention_days: -1\n")
    with pytest.raises(ConfigError, match="responses_retention_days"):
        load_settings(cfg, env={})
