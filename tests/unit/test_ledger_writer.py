"""The batched ledger writer on a real SQLite database: one transaction per interval under
steady load (not one after another), and nothing queued is lost at close."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from smartoken.auth.keys import generate_key
from smartoken.ledger import journal
from smartoken.ledger.journal import Journal
from smartoken.ledger.records import ROW_FIELDS, UsageRecord
from smartoken.ledger.sanitise import ATTEMPTS_LIMIT, TEXT_LIMIT, sanitise
from smartoken.ledger.writer import LedgerWriter
from smartoken.store import repo
from smartoken.store.db import make_engine, migrate
from smartoken.store.money_repo import ledger_sum
from smartoken.store.schema import ledger_dead_letters, usage_records, wallet_transactions
from tests.services import pg_url  # noqa: F401  (fixture)

CREDIT = 10_000_000
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CountingWriter(LedgerWriter):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.batches: list[int] = []

    async def _write(self, batch: list[UsageRecord]) -> None:
        await super()._write(batch)
        await asyncio.sleep(0.01)  # a slower database: records keep arriving during a write
        self.batches.append(len(batch))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))  # a fresh database, dropped afterwards


@pytest.fixture
async def ledger_db(db_url: str) -> AsyncIterator[tuple[AsyncEngine, int, int]]:
    engine = make_engine(db_url)
    await migrate(engine)
    account = await repo.create_account(engine, "acct-" + secrets.token_hex(3))
    await repo.credit_wallet(engine, account, CREDIT)
    _, prefix, digest = generate_key()
    key = await repo.insert_key(engine, account, prefix, digest, repo.KeyFields())
    try:
        yield engine, account, key
    finally:
        await engine.dispose()


def record(account: int, key: int, cost: int) -> UsageRecord:
    return UsageRecord(id="req-" + secrets.token_hex(8), created_at=datetime.now(UTC),
                       account_id=account, key_id=key, requested_model="m", model="m",
                       day="2026-11-22", month="2026-11", cost_micro=cost)


async def test_steady_load_writes_one_batch_per_interval(
        ledger_db: tuple[AsyncEngine, int, int]) -> None:
    engine, account, key = ledger_db
    writer = CountingWriter(engine, "gw-test", interval=0.1)
    writer.start()
    sent = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + 0.8
    while loop.time() < end:  # a record every millisecond, like a busy gateway
        writer.record(record(account, key, 3))
        sent += 1
        await asyncio.sleep(0.001)
    await writer.close()
    # 0.8 s at one batch per 0.1 s: about 8 transactions (the drain at close adds one). Written
    # back to back, as before, this was one per 10 ms write: ~60.
    assert len(writer.batches) <= 12, writer.batches
    assert sum(writer.batches) == sent == writer.written
    assert await repo.wallet_balance(engine, account) == CREDIT - 3 * sent
    total, balance = await ledger_sum(engine, account)
    assert total == balance


async def test_a_full_batch_is_written_before_the_interval(
        ledger_db: tuple[AsyncEngine, int, int]) -> None:
    engine, account, key = ledger_db
    writer = CountingWriter(engine, "gw-test", interval=30, max_batch=50)
    writer.start()
    for _ in range(120):
        writer.record(record(account, key, 1))
    for _ in range(200):
        if writer.written >= 100:
            break
        await asyncio.sleep(0.01)
    assert writer.batches[:2] == [50, 50]  # woken by a full batch, long before 30 s
    await writer.close()
    assert writer.written == 120
    assert await repo.wallet_balance(engine, account) == CREDIT - 120


async def test_every_field_reads_back_as_written(
        ledger_db: tuple[AsyncEngine, int, int]) -> None:
    """The ledger inserts rows straight to the driver (store/bulk.py): each column, times and
    booleans included, must read back through SQLAlchemy as the record held it."""
    engine, account, key = ledger_db
    rec = UsageRecord(
        id="req-" + secrets.token_hex(8), created_at=datetime(2026, 11, 22, 3, 4, 5, 678901,
                                                              tzinfo=UTC),
        account_id=account, key_id=key, requested_model="kimi-k2", model="kimi-k2-fallback",
        day="2026-11-22", month="2026-11", stream=True, route="kimi-k2:p/u", provider="p",
        upstream_model="u", status="partial", http_status=200, prompt_tokens=11,
        completion_tokens=22, cached_tokens=3, reasoning_tokens=4, usage_estimated=True,
        latency_ms=55, ttft_ms=7, cost_micro=1234, attempts='[{"route": "x"}]', error="cut")
    free = record(account, key, 0)  # costs nothing: a usage row and no debit
    writer = LedgerWriter(engine, "gw-test")
    writer.record(rec)
    writer.record(free)
    await writer.close()
    async with engine.connect() as conn:
        rows = {r["id"]: dict(r) for r in (await conn.execute(select(usage_records)))
                .mappings()}
        debits = [dict(r) for r in (await conn.execute(
            select(wallet_transactions).where(wallet_transactions.c.kind == "debit")))
            .mappings()]
        if engine.dialect.name == "sqlite":  # stored as SQLAlchemy stores it (range queries)
            raw = (await conn.exec_driver_sql(
                "SELECT created_at FROM usage_records WHERE id = ?", (rec.id,))).scalar()
            assert raw == "2026-11-22 03:04:05.678901"
    got = rows[rec.id]
    assert got["created_at"].replace(tzinfo=UTC) == rec.created_at
    for name in ROW_FIELDS:
        if name != "created_at":
            assert got[name] == getattr(rec, name), name
    assert rows[free.id]["cost_micro"] == 0 and rows[free.id]["stream"] is False
    [debit] = debits
    assert debit["request_id"] == rec.id and debit["amount_micro"] == -1234
    assert debit["account_id"] == account and debit["origin"] == "gw-test"
    assert debit["reason"] == "usage kimi-k2" and debit["actor"] == "gateway"
    assert await repo.wallet_balance(engine, account) == CREDIT - 1234


# ---------------------------------------------------------------- the crash journal


def test_journal_segments_rotate_and_go_when_committed(tmp_path: Path) -> None:
    j = Journal(tmp_path, "gw-a")
    for _ in range(3):
        j.append(record(1, 1, 5))
    j.rotate()  # a flush takes those three
    for _ in range(2):
        j.append(record(1, 1, 5))
    assert len(list(tmp_path.glob("gw-a.*.jsonl"))) == 2 and j.pending == 5
    j.written(2)  # a partial batch: the first segment still holds one uncommitted record
    assert len(list(tmp_path.glob("gw-a.*.jsonl"))) == 2 and j.pending == 3
    j.written(1)
    assert len(list(tmp_path.glob("gw-a.*.jsonl"))) == 1 and j.pending == 2
    assert journal.orphans(tmp_path, min_age=0) == []  # alive: its lock is held
    j.close()  # two records never committed: their segment and the lock stay for recovery
    [orphan] = journal.orphans(tmp_path, min_age=0)
    assert len(orphan.records()) == 2
    orphan.release(delete=True)
    assert list(tmp_path.iterdir()) == []


def test_a_stream_cut_by_a_kill_is_recovered_from_its_last_progress(tmp_path: Path) -> None:
    """Issue 12 item 8: a running stream's progress lines survive segment rotation and
    deletion; recovery bills a stream with no final record for its last progress (partial),
    and a final record always wins over progress."""
    from dataclasses import replace
    j = Journal(tmp_path, "gw-a")
    cut = replace(record(1, 1, 3), status="partial")
    done = record(1, 1, 5)
    j.progress(cut)
    j.progress(done)
    other = record(1, 1, 7)
    j.append(other)
    j.rotate()  # a flush takes ``other`` ...
    j.written(1)  # ... and commits it: the first segment (with the first progress) is gone
    assert len(list(tmp_path.glob("gw-a.*.jsonl"))) == 1
    j.append(replace(done, cost_micro=9))  # finished: its final record
    j.progress(replace(cut, cost_micro=4))  # still running, delivered more
    os.close(j._fd)  # SIGKILL: nothing closed, nothing deleted
    os.close(j._lock_fd)
    [orphan] = journal.orphans(tmp_path, min_age=0)
    got = {r.id: (r.status, r.cost_micro) for r in orphan.records()}
    assert got == {cut.id: ("partial", 4), done.id: ("ok", 9)}
    orphan.release(delete=True)


async def test_recovery_writes_only_what_is_missing(
        ledger_db: tuple[AsyncEngine, int, int], tmp_path: Path) -> None:
    """A dead process's journal: one record it had committed (its segment was not deleted
    yet), two it had not, and a line cut by the kill. Recovery bills the two, once."""
    engine, account, key = ledger_db
    folder = tmp_path / "journal"
    committed, lost1, lost2 = (record(account, key, 7) for _ in range(3))
    first = LedgerWriter(engine, "gw-dead")
    first.record(committed)
    await first.flush()
    dead = Journal(folder, "gw-dead")
    for rec in (committed, lost1, lost2):
        dead.append(rec)
    os.write(dead._fd, b'["req-cut", "2026-')  # the kill came mid-line
    dead.close()  # (as a killed process would, it leaves its records and lock behind)

    writer = LedgerWriter(engine, "gw-new", journal=Journal(folder, "gw-new"))
    assert await writer.recover(folder) == 2
    assert await writer.recover(folder) == 0  # its files are gone: nothing twice
    assert sorted(p.name for p in folder.iterdir()) == ["gw-new.00000001.jsonl", "gw-new.lock"]
    async with engine.connect() as conn:
        ids = {r[0] for r in await conn.execute(select(usage_records.c.id))}
    assert ids == {committed.id, lost1.id, lost2.id}
    assert await repo.wallet_balance(engine, account) == CREDIT - 3 * 7
    total, balance = await ledger_sum(engine, account)
    assert total == balance
    await writer.close()
    assert list(folder.iterdir()) == []


async def test_a_journal_the_database_is_down_for_stays_for_later(
        ledger_db: tuple[AsyncEngine, int, int], tmp_path: Path) -> None:
    engine, account, key = ledger_db
    folder = tmp_path / "journal"
    dead = Journal(folder, "gw-dead")
    dead.append(record(account, key, 7))
    dead.close()
    down = make_engine("postgresql://nobody@127.0.0.1:1/none")  # nothing listens there
    assert await LedgerWriter(down, "gw-new").recover(folder) == 0  # logged; starts anyway
    await down.dispose()
    assert sorted(p.name for p in folder.iterdir()) == ["gw-dead.00000001.jsonl", "gw-dead.lock"]
    assert await LedgerWriter(engine, "gw-new").recover(folder) == 1  # the database is back
    assert await repo.wallet_balance(engine, account) == CREDIT - 7


async def test_one_refused_journal_record_does_not_block_recovery(
        ledger_db: tuple[AsyncEngine, int, int], tmp_path: Path) -> None:
    """Before: a record the database refused (here: an account that does not exist, so its
    debit breaks the foreign key) kept the whole journal back at every start."""
    engine, account, key = ledger_db
    folder = tmp_path / "journal"
    dead = Journal(folder, "gw-dead")
    good = [record(account, key, 7) for _ in range(5)]
    bad = record(account + 1000, key, 7)
    for rec in (*good[:2], bad, *good[2:]):
        dead.append(rec)
    dead.close()
    writer = LedgerWriter(engine, "gw-new")
    assert await writer.recover(folder) == 6
    assert list(folder.iterdir()) == []  # done: not tried again at the next start
    assert await repo.wallet_balance(engine, account) == CREDIT - 5 * 7
    async with engine.connect() as conn:
        letters = (await conn.execute(select(ledger_dead_letters))).mappings().all()
    assert [(row["request_id"], row["account_id"]) for row in letters] == [(bad.id, bad.account_id)]
    assert writer.dead_letters == 1


def test_a_journal_line_written_before_a_column_was_added_still_reads(tmp_path: Path) -> None:
    """Lines written by the version before migration 0012 have no cache_write_tokens (before
    0016 no protocol): a restart after the upgrade must still bill them, not drop them as cut
    lines."""
    rec = record(1, 1, 5)
    rec.cache_write_tokens = 40
    rec.protocol = "messages"
    line = journal.line(rec)
    assert journal._parse(line) == rec
    values = orjson.loads(line)
    old = journal._parse(orjson.dumps(values[:ROW_FIELDS.index("cache_write_tokens")]))
    assert old is not None and old.cache_write_tokens == 0 and old.cost_micro == rec.cost_micro
    before_0016 = journal._parse(orjson.dumps(values[:ROW_FIELDS.index("protocol")]))
    assert before_0016 is not None and before_0016.protocol == "chat"
    assert before_0016.cache_write_tokens == 40
    assert journal._parse(orjson.dumps([*values, 1])) is None  # a line from the future


# ---------------------------------------------------------------- one bad record


async def test_a_refused_record_is_isolated_and_billed(
        ledger_db: tuple[AsyncEngine, int, int], db_url: str) -> None:
    """51 records, one carrying what the database refuses, in one batch: before, the batch
    failed forever (0 of 51 written). Now 50 are written as they are, the refused one goes to
    ledger_dead_letters and is billed through a stand-in with its id, and the wallet moves by
    all 51 costs. The refused value is put in past the sanitiser (``record`` would clean it):
    on PostgreSQL a NUL character, on SQLite an integer too large for the column."""
    engine, account, key = ledger_db
    other = await repo.create_account(engine, "uninvolved-" + secrets.token_hex(3))
    await repo.credit_wallet(engine, other, CREDIT)
    letters: list[int] = []
    writer = LedgerWriter(engine, "gw-test", on_dead_letter=lambda: letters.append(1))
    recs = [record(account, key, 10 + i) for i in range(50)]
    bad = record(account, key, 99)
    bad.error = "upstream said \x00 here"
    if db_url.startswith("sqlite"):
        bad.latency_ms = 2**70
    recs.insert(17, bad)
    uninvolved = record(other, key, 5)
    recs.append(uninvolved)
    writer._queue.extend(recs)  # as queued, past record()'s sanitiser
    await writer.flush()
    assert writer.pending == 0 and writer.written == 52 and writer.dead_letters == 1
    assert letters == [1]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(usage_records))).mappings().all()
        letter = (await conn.execute(select(ledger_dead_letters))).mappings().one()
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {r.id for r in recs}  # one record per request, the refused one too
    assert by_id[bad.id]["error"].startswith("dead_letter: ")
    assert by_id[bad.id]["cost_micro"] == 99
    assert letter["request_id"] == bad.id and "upstream said" in letter["payload"]
    assert await repo.wallet_balance(engine, other) == CREDIT - 5  # never held back
    assert await repo.wallet_balance(engine, account) == CREDIT - sum(
        r.cost_micro for r in recs if r.account_id == account)
    for acct in (account, other):
        total, balance = await ledger_sum(engine, acct)
        assert total == balance


async def test_a_database_outage_is_not_mistaken_for_a_bad_record(
        ledger_db: tuple[AsyncEngine, int, int]) -> None:
    """A database that does not answer keeps the whole queue: nothing is dead-lettered."""
    _, account, key = ledger_db
    down = make_engine("postgresql://nobody@127.0.0.1:1/none")
    writer = LedgerWriter(down, "gw-test")
    for _ in range(5):
        writer.record(record(account, key, 3))
    with pytest.raises(Exception):  # noqa: B017
        await writer.flush()
    assert writer.pending == 5 and writer.dead_letters == 0
    await down.dispose()


def test_sanitise_cleans_what_a_database_refuses() -> None:
    rec = record(1, 1, 1)
    rec.error = "a\x00b\udc80c\x1bd\te\nf" + "x" * 10_000
    rec.requested_model = "m" * 500
    rec.attempts = orjson.dumps([{"route": "r", "error": "e" * 30_000}] * 3).decode()
    sanitise(rec)
    assert rec.error.startswith("ab?cd\te\nf") and len(rec.error) == TEXT_LIMIT
    assert len(rec.requested_model) == 100
    assert len(rec.attempts) <= ATTEMPTS_LIMIT and orjson.loads(rec.attempts)[0]["route"] == "r"
    same = record(1, 1, 1)
    same.error = "plain ascii"
    assert sanitise(same).error == "plain ascii"
    same.prompt_tokens, same.latency_ms = 2**40, -5
    assert (sanitise(same).prompt_tokens, same.latency_ms) == (2**31 - 1, 0)


# ---------------------------------------------------------------- a worker that died


async def test_a_dead_workers_reservations_are_released_once_its_journal_is_written(
        ledger_db: tuple[AsyncEngine, int, int], tmp_path: Path) -> None:
    """SQL reserver (``--workers N`` on one host): a worker killed with one request answered
    (settled, journaled, not committed) and one still running. Before, both held the key's
    budget until the reservation TTL (30 s); now the next journal scan of a live worker bills
    the answered one and releases the running one at once."""
    from zoneinfo import ZoneInfo

    from smartoken.auth.keys import KeyContext
    from smartoken.budget.sql_reserver import SqlReserver
    from smartoken.budget.windows import Windows
    from smartoken.errors import BudgetExceeded

    engine, account, key_id = ledger_db
    w = 1000
    key = KeyContext(key_id, account, "a", "user", "sk-st-x", "k", None, 2 * w, None, None,
                     None, None, False)
    windows = Windows(ZoneInfo("UTC"))
    folder = tmp_path / "journal"
    dead = SqlReserver(engine, windows, "gw-dead", reservation_ttl=30)
    await dead.reserve(key, w, "req-running")
    answered = await dead.reserve(key, w, "req-answered")
    dead.settle(answered, w)
    await dead._drain_settles()
    rec = record(account, key_id, w)
    rec.id, rec.day, rec.month = "req-answered", answered.day, answered.month
    journal_of_dead = Journal(folder, "gw-dead")
    journal_of_dead.append(rec)
    journal_of_dead.close()  # killed: its record and lock stay behind
    live = SqlReserver(engine, windows, "gw-live", reservation_ttl=30)
    with pytest.raises(BudgetExceeded):  # both still held
        await live.reserve(key, w, "req-1")
    writer = LedgerWriter(engine, "gw-live", hooks=live)
    assert await writer.recover(folder, on_orphan=live.release_holder) == 1
    res = await live.reserve(key, w, "req-2")  # the running one's hold is gone
    with pytest.raises(BudgetExceeded):  # the answered one is billed: 2 x w spent/held
        await live.reserve(key, w, "req-3")
    live.release(res)
    await live.close()
    await dead.close()
    assert await repo.wallet_balance(engine, account) == CREDIT - w
