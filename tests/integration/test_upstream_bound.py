"""Issue 12 item 1: the reservation bounds what the upstream bills, not only what is charged.

The fake upstream is an honest meter (tests/fakes/meter.py): it bills what it received (audio
by its duration, images by their pixels) and honours only the output-limit field its dialect
documents. Every test asserts on the **upstream-reported** cost (``assert_invariants``), under
the memory reserver and the shared ones.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config
from tests.moneykit import (
    CATALOG,
    MASTER,
    AdminAPI,
    assert_invariants,
    upstream_cost,
)
from tests.services import REDIS_URL, pg_url, redis_prefix  # noqa: F401  (fixtures)

BUDGET = 10_000  # $0.01 a day
PRICE = CATALOG.models["kimi-k2"].price


def wav(seconds: float, rate: int = 8000) -> str:
    """A mono 8-bit PCM WAV of ``seconds`` (8,000 bytes a second), base64."""
    n = int(seconds * rate)
    head = b"RIFF" + struct.pack("<I", 36 + n) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate, 1, 8) + b"data" + struct.pack("<I", n)
    return base64.b64encode(head + b"\x80" * n).decode()


def _env(mode: str, request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"SMARTOKEN_MASTER_KEY": MASTER}
    if mode == "sql":
        env["SMARTOKEN_RESERVER"] = "sql"
    elif mode == "redis":
        env.update({"SMARTOKEN_DATABASE_URL": request.getfixturevalue("pg_migrated_url"),
                    "SMARTOKEN_REDIS_URL": REDIS_URL,
                    "SMARTOKEN_REDIS_PREFIX": request.getfixturevalue("redis_prefix")})
    return env


def _setup(make_inproc: Any, fake: FakeUpstream, mode: str,
           request: pytest.FixtureRequest) -> tuple[Any, int, int, str]:
    gw = make_inproc(fake_config(fake), env=_env(mode, request))
    aid = AdminAPI(gw).account("attacker", credit="10")
    # written directly: POST /admin/keys under the shared reservers is issue 12 item 3
    key = gw.key("attacker", daily_budget_micro=BUDGET)
    return gw, aid, gw.key_ids[key], key


def _send(client: openai.OpenAI, n: int, stream_every: int = 2, **kw: Any) -> tuple[int, set[str]]:
    ok, refused = 0, set()
    for i in range(n):
        try:
            if i % stream_every == 1:
                for _ in client.chat.completions.create(stream=True, **kw):
                    pass
            else:
                client.chat.completions.create(**kw)
            ok += 1
        except openai.APIStatusError as exc:
            refused.add(f"{exc.status_code}:{exc.code}")
    return ok, refused


@pytest.mark.parametrize("mode", ["memory", "sql"])
def test_audio_parts_are_sized_so_the_upstream_bill_stays_in_budget(
        fake: FakeUpstream, make_inproc: Any, mode: str, request: pytest.FixtureRequest) -> None:
    """The issue's attack: a 200 KB input_audio part sent 60 times on a $0.01 key. Before, the
    audio was sized 0 tokens: every request was admitted and the upstream billed 3.5x the
    budget while the ledger charged a fraction of it."""
    gw, aid, kid, key = _setup(make_inproc, fake, mode, request)
    audio = wav(25)  # 200 KB: the fake bills 25 s at 25 tokens a second
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "Transcribe this."},
        {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}]}]
    client = gw.client(key)
    ok, refused = _send(client, 60, model="kimi-k2", messages=messages, max_tokens=1)
    assert 0 < ok < 60 and refused == {"429:budget_exceeded"}, (ok, refused)
    gw.wait_usage(ok, key_id=kid)
    inv = assert_invariants(gw, aid, fakes=[fake], budget=BUDGET, answered=ok, key_id=kid)
    assert inv["upstream"] == inv["spent"]  # the ledger charged what the upstream billed


def png(width: int, height: int) -> str:
    """A data URL whose PNG header says ``width`` x ``height`` (all a vendor reads to bill)."""
    head = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(
        ">II", width, height) + b"\x08\x02\x00\x00\x00"
    return "data:image/png;base64," + base64.b64encode(head + b"\x00" * 64).decode()


def test_images_are_sized_by_their_pixels(fake: FakeUpstream, make_inproc: Any,
                                          request: pytest.FixtureRequest) -> None:
    """A 4000x4000 image: Qwen-VL's grid bills it 16,386 tokens. Before, every image was
    reserved at a flat 765 tokens and the upstream billed 20x that; now the budget admits only
    what the upstream's bill fits in."""
    gw, aid, kid, key = _setup(make_inproc, fake, "memory", request)
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": png(4000, 4000)}}]}]
    ok, refused = _send(gw.client(key), 6, model="kimi-k2", messages=messages, max_tokens=1)
    assert refused == {"429:budget_exceeded"}, (ok, refused)
    gw.wait_usage(ok, key_id=kid)
    assert_invariants(gw, aid, fakes=[fake], budget=BUDGET, answered=ok, key_id=kid)


def test_unsizable_parts_are_refused_before_anything_is_reserved(
        fake: FakeUpstream, make_inproc: Any, request: pytest.FixtureRequest) -> None:
    gw, _aid, _kid, key = _setup(make_inproc, fake, "memory", request)
    client = gw.client(key)
    for part in ({"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}},
                 {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE",
                                           "filename": "a.pdf"}},
                 {"type": "input_audio", "input_audio": {"data": 42}}):
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="kimi-k2", max_tokens=1, messages=[
                {"role": "user", "content": [{"type": "text", "text": "hi"}, part]}])
        assert err.value.code == "unsupported_content"
        assert "messages[0].content[1]" in err.value.message
    assert fake.requests == [] and gw.usage() == []


@pytest.mark.parametrize("mode", ["memory", "sql"])
def test_max_completion_tokens_is_sent_in_the_field_the_dialect_honours(
        make_fake: Any, make_inproc: Any, mode: str, request: pytest.FixtureRequest) -> None:
    """``max_completion_tokens: 1`` to an upstream that honours only ``max_tokens`` (DeepSeek's
    documented field): before, the field was passed through, ignored, and each request wrote
    the model's 2,000-token default on a $0.01 key."""
    fake = make_fake(dialect="deepseek", default_output=2000)
    gw, aid, kid, key = _setup(make_inproc, fake, mode, request)
    client = gw.client(key)
    ok, refused = _send(client, 12, model="kimi-k2", max_completion_tokens=1,
                        messages=[{"role": "user", "content": "Write a long essay."}])
    assert ok == 12, refused
    assert all(r.get("max_tokens") == 1 and "max_completion_tokens" not in r
               for r in fake.requests)
    recs = gw.wait_usage(12, key_id=kid)
    assert all(r["completion_tokens"] == 1 for r in recs)
    assert_invariants(gw, aid, fakes=[fake], budget=BUDGET, answered=12, key_id=kid)


def _overrun_metric(gw: Any) -> int:
    for line in httpx.get(gw.base_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith('smartoken_overrun_micro_usd_total{model="kimi-k2"}'):
            return int(float(line.split()[-1]))
    return 0


@pytest.mark.parametrize("mode", ["memory", "sql", "redis"])
def test_an_upstream_that_bills_more_than_reserved_is_billed_in_full_then_refused(
        fake: FakeUpstream, make_inproc: Any, mode: str, request: pytest.FixtureRequest) -> None:
    """An upstream reports more than the reservation allowed for: the true cost is recorded and
    charged (before, the shared reservers cut the charge to the reservation and the memory one
    to the room left), the budget goes over by that one request, the next one is refused, and
    the excess is counted in smartoken_overrun_micro_usd_total."""
    lie = {"prompt_tokens": 20_000, "completion_tokens": 1_000}
    fake.set(usage=lie)
    gw, aid, kid, key = _setup(make_inproc, fake, mode, request)
    client = gw.client(key)
    client.chat.completions.create(model="kimi-k2", max_tokens=10,
                                   messages=[{"role": "user", "content": "hi"}])
    [rec] = gw.wait_usage(1, key_id=kid)
    true_cost = PRICE.cost(20_000, 1_000)
    assert true_cost > BUDGET and rec["cost_micro"] == true_cost == upstream_cost([fake])
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="kimi-k2", max_tokens=10,
                                       messages=[{"role": "user", "content": "hi"}])
    assert err.value.code == "budget_exceeded" and len(fake.requests) == 1
    reserved = true_cost - _overrun_metric(gw)
    assert 0 < reserved < BUDGET
    assert_invariants(gw, aid, fakes=[fake], budget=BUDGET, answered=1, key_id=kid,
                      overrun=true_cost - reserved)
