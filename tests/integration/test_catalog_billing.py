"""Issue 14: prices as vendors bill them, through the gateway against the fake upstream, exact to
the micro-dollar: cached-input tokens in each dialect's shape, DeepSeek's peak and off-peak
hours by the request's start instant, and a price imported while a request runs."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openai
import pytest
from click.testing import CliRunner

from smartoken.cli.main import main as cli
from tests.harness import Gateway, fake_config
from tests.moneykit import MASTER, assert_ledger_balances

BEIJING = ZoneInfo("Asia/Shanghai")
MSG = [{"role": "user", "content": "Price this."}]
# 10,000 prompt tokens of which 8,000 were cache hits; 1,000 out.
DEEPSEEK_USAGE = {"prompt_tokens": 10_000, "completion_tokens": 1_000,
                  "prompt_cache_hit_tokens": 8_000, "prompt_cache_miss_tokens": 2_000}
OFF_PEAK = 2_000 * 0.15 + 8_000 * 0.003 + 1_000 * 0.6  # deepseek-flash, $/1M -> micro-USD
PEAK = 2_000 * 0.3 + 8_000 * 0.006 + 1_000 * 1.2


def _clock(path: Path, *ymdhms: int) -> None:
    path.write_text(str(datetime(*ymdhms, tzinfo=BEIJING).timestamp()))  # type: ignore[misc]


def _env(clock: Path) -> dict[str, str]:
    return {"SMARTOKEN_MASTER_KEY": MASTER, "SMARTOKEN_TEST_CLOCK_FILE": str(clock)}


def _deepseek(make_fake: Any, make_inproc: Any, clock: Path, **scenario: Any) -> Gateway:
    fake = make_fake(dialect="deepseek", usage=DEEPSEEK_USAGE, **scenario)
    gw: Gateway = make_inproc(fake_config(fake, models={"deepseek-chat": {"routes": [
        {"provider": "fake0", "upstream_model": "deepseek-flash"}]}}), env=_env(clock))
    gw.fake = fake  # type: ignore[attr-defined]
    return gw


@pytest.mark.parametrize("stream", [False, True])
def test_cached_input_tokens_in_each_dialect_are_billed_at_the_cached_price(
        make_fake: Any, make_inproc: Any, tmp_path: Path, stream: bool) -> None:
    clock = tmp_path / "clock"
    _clock(clock, 2026, 12, 5, 10, 0, 0)  # a Saturday: DeepSeek's off-peak price
    kimi = {"prompt_tokens": 10_000, "completion_tokens": 500}
    deepseek = make_fake(dialect="deepseek", usage=DEEPSEEK_USAGE)
    moonshot = make_fake(dialect="moonshot", usage={**kimi, "cached_tokens": 6_000})
    plain = make_fake(usage={**kimi, "prompt_tokens_details": {"cached_tokens": 6_000}})
    gw = make_inproc(fake_config(deepseek, moonshot, plain, models={
        "deepseek-chat": {"routes": [{"provider": "fake0", "upstream_model": "deepseek-flash"}]},
        "kimi-k2": {"routes": [{"provider": "fake1", "upstream_model": "kimi-k2.6"}]},
        "kimi-k2.6": {"routes": [{"provider": "fake2"}]}}), env=_env(clock))
    client = gw.client(gw.key("cache", credit="5"))
    for model in ("deepseek-chat", "kimi-k2", "kimi-k2.6"):
        if stream:
            chunks = list(client.chat.completions.create(
                model=model, messages=MSG, stream=True, stream_options={"include_usage": True}))
            usage = chunks[-1].usage
        else:
            usage = client.chat.completions.create(model=model, messages=MSG).usage
        assert usage is not None and usage.prompt_tokens_details is not None
        assert usage.prompt_tokens_details.cached_tokens in (8_000, 6_000)
    recs = {r["model"]: r for r in gw.wait_usage(3)}
    assert len(gw.usage()) == 3  # one record per answered request
    assert recs["deepseek-chat"]["cached_tokens"] == 8_000
    assert recs["deepseek-chat"]["cost_micro"] == OFF_PEAK == 924
    # kimi-k2 is served as kimi-k2.6: 4,000 x $0.95 + 6,000 x $0.16 + 500 x $4.00 per 1M
    for model in ("kimi-k2", "kimi-k2.6"):
        assert recs[model]["cached_tokens"] == 6_000
        assert recs[model]["cost_micro"] == 3_800 + 960 + 2_000
    assert not any(r["usage_estimated"] for r in recs.values())
    ledger = assert_ledger_balances(gw, gw.account("cache"))
    assert ledger["spent"] == 924 + 2 * 6_760


@pytest.mark.parametrize(("when", "cost"), [
    ((2026, 12, 1, 10, 0, 0), PEAK),  # Tuesday, 10:00 Beijing (02:00 UTC)
    ((2026, 12, 1, 12, 30, 0), OFF_PEAK),  # the lunch gap
    ((2026, 12, 1, 8, 59, 59), OFF_PEAK),  # one second before peak
    ((2026, 12, 5, 10, 0, 0), OFF_PEAK),  # Saturday
])
def test_a_request_is_billed_by_the_window_it_starts_in(
        make_fake: Any, make_inproc: Any, tmp_path: Path, when: tuple[int, ...],
        cost: float) -> None:
    clock = tmp_path / "clock"
    _clock(clock, *when)
    gw = _deepseek(make_fake, make_inproc, clock)
    client = gw.client(gw.key("win", credit="1"))
    client.chat.completions.create(model="deepseek-chat", messages=MSG, max_tokens=1_000)
    [rec] = gw.wait_usage(1)
    assert rec["cost_micro"] == cost
    assert gw.fake.requests[-1]["thinking"] == {"type": "disabled"}  # type: ignore[attr-defined]
    assert_ledger_balances(gw, gw.account("win"))


def test_a_stream_that_starts_off_peak_stays_off_peak(make_fake: Any, make_inproc: Any,
                                                      tmp_path: Path) -> None:
    clock = tmp_path / "clock"
    _clock(clock, 2026, 12, 1, 8, 59, 59)
    gw = _deepseek(make_fake, make_inproc, clock, chunks=10, chunk_delay=0.05)
    client = gw.client(gw.key("snap", credit="1"))
    stream = client.chat.completions.create(model="deepseek-chat", messages=MSG, stream=True)
    next(iter(stream))
    _clock(clock, 2026, 12, 1, 9, 0, 30)  # peak hours begin while it streams
    list(stream)
    client.chat.completions.create(model="deepseek-chat", messages=MSG)  # starts in peak
    first, second = gw.wait_usage(2)
    assert (first["cost_micro"], second["cost_micro"]) == (OFF_PEAK, PEAK)
    assert_ledger_balances(gw, gw.account("snap"))


def _admin(gw: Gateway, method: str, path: str, key: str = MASTER, **kw: Any) -> httpx.Response:
    return httpx.request(method, gw.base_url + path, timeout=15,
                         headers={"authorization": f"Bearer {key}"}, **kw)


def _kimi_price(gw: Gateway, key: str) -> dict[str, Any]:
    data: dict[str, Any] = gw.client(key).models.retrieve("kimi-k2").model_extra or {}
    return dict(data["pricing"])


def test_an_imported_price_applies_to_requests_that_start_after_it(
        make_fake: Any, make_inproc: Any, tmp_path: Path) -> None:
    usage = {"prompt_tokens": 1_000, "completion_tokens": 100}
    fake = make_fake(usage=usage, chunks=10, chunk_delay=0.05)
    gw = make_inproc(fake_config(fake), env=_env(tmp_path / "no-clock"))
    key = gw.key("imp", credit="1")
    client = gw.client(key)
    before = _kimi_price(gw, key)
    assert (before["input"], before["output"], before["as_of"]) == \
        ("0.950000", "4.000000", "2026-12-01")
    # A request that starts before the import...
    stream = client.chat.completions.create(model="kimi-k2", messages=MSG, stream=True)
    next(iter(stream))
    new = {"models": {"kimi-k2.6": {
        "family": "kimi", "context_window": 262144, "max_output": 65536,
        "price": {"input": "2.00", "output": "8.00",
                  "source": {"url": "https://example.com/kimi-prices", "as_of": "2026-12-02"}}}}}
    r = _admin(gw, "PUT", "/admin/catalog", params={"merge": "true"}, json=new)
    assert r.status_code == 200, r.text
    assert r.json()["object"] == "catalog.import"
    list(stream)
    # ...is billed at the price it started with; the next one at the new price.
    client.chat.completions.create(model="kimi-k2", messages=MSG)
    old_rec, new_rec = gw.wait_usage(2)
    assert old_rec["cost_micro"] == 1_000 * 0.95 + 100 * 4 == 1_350
    assert new_rec["cost_micro"] == 1_000 * 2 + 100 * 8 == 2_800
    after = _kimi_price(gw, key)
    assert (after["input"], after["as_of"], after["source"]) == \
        ("2.000000", "2026-12-02", "https://example.com/kimi-prices")
    exported = _admin(gw, "GET", "/admin/catalog").json()
    assert exported["models"]["kimi-k2.6"]["price"]["input"] == "2.00"
    assert "deepseek-flash" in exported["models"]  # the built-in document is still under it
    assert_ledger_balances(gw, gw.account("imp"))


def test_a_bad_import_changes_nothing_and_only_admins_may_import(
        fake: Any, make_inproc: Any, tmp_path: Path) -> None:
    gw = make_inproc(fake_config(fake), env=_env(tmp_path / "no-clock"))
    user = gw.key("someone", credit="1")
    before = _admin(gw, "GET", "/admin/catalog").json()
    bad = {"models": {"kimi-k2.6": {"family": "kimi", "context_window": 5,
                                    "price": {"input": "-1", "output": "1"}}}}
    r = _admin(gw, "PUT", "/admin/catalog", json=bad)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_catalog" and err["param"] == "models.kimi-k2.6.price.input"
    # a removal the configuration file's routes depend on (kimi-k2 routes to fake0)
    r = _admin(gw, "PUT", "/admin/catalog", json={"models": {"kimi-k2": None}})
    assert r.status_code == 400 and "kimi-k2" in r.json()["error"]["message"]
    for shape in ({"models": [1]}, {"windows": {"w": {"tz": "UTC", "hours": 5}}},
                  {"models": {"m": {"alias_of": ["x"]}}}):
        for merge in ("true", "false"):
            r = _admin(gw, "PUT", "/admin/catalog", params={"merge": merge}, json=shape)
            assert r.status_code == 400, (shape, r.text)  # never a 5xx
    assert _admin(gw, "PUT", "/admin/catalog", key=user, json={}).status_code == 403
    assert _admin(gw, "GET", "/admin/catalog", key=user).status_code == 403
    assert gw.sql("SELECT COUNT(*) AS n FROM catalog_documents")[0]["n"] == 0
    assert _admin(gw, "GET", "/admin/catalog").json() == before
    assert gw.client(user).chat.completions.create(model="kimi-k2", messages=MSG).choices


def test_a_cli_import_reaches_a_running_gateway_within_a_second_or_two(
        fake: Any, make_inproc: Any, tmp_path: Path) -> None:
    gw = make_inproc(fake_config(fake), env=_env(tmp_path / "no-clock"))
    key = gw.key("cli", credit="1")
    exported = CliRunner().invoke(cli, ["--data-dir", str(gw.data_dir), "catalog", "export"])
    assert exported.exit_code == 0, exported.output
    assert "deepseek-peak" in exported.output and "unverified" in exported.output
    edited = tmp_path / "catalog.yaml"
    edited.write_text(exported.output.replace("input: '0.95'", "input: '1.25'"))
    seen: list[float] = []

    def watch() -> None:
        while not seen:
            if _kimi_price(gw, key)["input"] == "1.250000":
                seen.append(time.monotonic())
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["--data-dir", str(gw.data_dir), "catalog", "import",
                                      str(edited)])
    assert result.exit_code == 0, result.output
    watcher.start()
    watcher.join(5)
    assert seen, "the running gateway never served the imported price"
    print(f"import -> served in {seen[0] - started:.2f} s")
    assert seen[0] - started < 2.5  # the poller runs every second
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {kimi-k2.6: {price: {input: 1}}}\n")
    result = CliRunner().invoke(cli, ["--data-dir", str(gw.data_dir), "catalog", "import",
                                      str(bad)])
    assert result.exit_code != 0 and "models.kimi-k2.6" in result.output
    with pytest.raises(openai.NotFoundError):
        gw.client(key).models.retrieve("no-such-model")


@pytest.mark.parametrize("stream", [False, True])
def test_cache_writes_are_recorded_and_billed_at_the_cache_write_price(
        make_fake: Any, make_inproc: Any, tmp_path: Path, stream: bool) -> None:
    usage = {"input_tokens": 100, "cache_read_input_tokens": 600,
             "cache_creation_input_tokens": 300, "output_tokens": 50}
    fake = make_fake(dialect="anthropic", usage=usage)
    gw = make_inproc(fake_config(fake, models={"claude-cached": {
        "family": "kimi", "context_window": 200_000, "input_price": "3.00",
        "output_price": "15.00", "cached_input_price": "0.30", "cache_write_price": "3.75",
        "routes": [{"provider": "fake0", "upstream_model": "claude-x"}]}}),
        env=_env(tmp_path / "no-clock"))
    client = gw.client(gw.key("writes", credit="1"))
    if stream:
        list(client.chat.completions.create(model="claude-cached", messages=MSG, stream=True))
    else:
        client.chat.completions.create(model="claude-cached", messages=MSG)
    [rec] = gw.wait_usage(1)
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["cache_write_tokens"]) == \
        (1_000, 600, 300)
    # 100 x $3 + 600 x $0.30 + 300 x $3.75 + 50 x $15 per 1M
    assert rec["cost_micro"] == 300 + 180 + 1_125 + 750
    assert_ledger_balances(gw, gw.account("writes"))
