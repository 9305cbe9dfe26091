"""Issue 4: budgets set from the CLI reach a running gateway (through its change poller)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import openai

from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config, run_cli
from tests.moneykit import MASTER, MESSAGES, AdminAPI


def test_cli_update_and_credit_reach_the_running_gateway(fake: FakeUpstream,
                                                         make_gateway: Any) -> None:
    gw = make_gateway(fake_config(fake), env={"SMARTOKEN_MASTER_KEY": MASTER})
    admin = AdminAPI(gw)
    aid = admin.account("cli", credit="0.001")
    key, kid = admin.key(aid)
    client = gw.client(key)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(["--data-dir", str(gw.data_dir), *args], gw.env)

    def refused_with() -> str | None:
        try:
            client.chat.completions.create(model="kimi-k2", messages=MESSAGES, max_tokens=10)
        except openai.APIStatusError as exc:
            return str(exc.code)
        return None

    assert refused_with() is None
    bad = cli("keys", "update", str(kid), "--rpm", "-3")
    assert bad.returncode != 0 and "rpm" in bad.stderr
    assert cli("keys", "update", "9999", "--rpm", "5").returncode != 0
    out = cli("keys", "update", str(kid), "--daily-budget", "0", "--families", "kimi")
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 10
    while refused_with() != "budget_exceeded" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert refused_with() == "budget_exceeded"
    assert cli("keys", "update", str(kid), "--daily-budget", "none").returncode == 0
    # The wallet is nearly empty; a CLI credit (another engine on the database) is counted once.
    while refused_with() != "insufficient_balance" and time.monotonic() < deadline + 20:
        pass
    assert refused_with() == "insufficient_balance"
    assert cli("wallet", "credit", "cli", "0.01", "--reason", "top-up").returncode == 0
    deadline = time.monotonic() + 10
    while refused_with() == "insufficient_balance" and time.monotonic() < deadline:
        time.sleep(0.2)
    wallet = admin.ok(admin.get(f"/admin/accounts/{aid}/wallet"))
    for _ in range(100):
        wallet = admin.ok(admin.get(f"/admin/accounts/{aid}/wallet"))
        if wallet["balance"] == wallet["recorded_balance"] == wallet["ledger_sum"]:
            break
        time.sleep(0.1)
    assert wallet["balance"] == wallet["recorded_balance"] == wallet["ledger_sum"]
