"""Issue 4: requests-per-minute and tokens-per-minute limits per key (429 with Retry-After)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.harness import fake_config
from tests.moneykit import MASTER, MESSAGES, AdminAPI


def test_rpm_and_tpm(fake: FakeUpstream, make_inproc: Any) -> None:
    gw = make_inproc(fake_config(fake), env={"SMARTOKEN_MASTER_KEY": MASTER})
    admin = AdminAPI(gw)
    aid = admin.account("limited", credit="5")
    key, kid = admin.key(aid, rpm=3)
    client = gw.client(key)
    for _ in range(3):
        client.chat.completions.create(model="kimi-k2", messages=MESSAGES)
    calls = len(fake.requests)
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="kimi-k2", messages=MESSAGES)
    assert exc.value.code == "rate_limit_exceeded" and exc.value.param == "rpm"
    retry = int(exc.value.response.headers["retry-after"])
    assert 1 <= retry <= 20  # one request per 20 s refills
    assert len(fake.requests) == calls and len(gw.wait_usage(3)) == 3
    # Lifting the limit takes effect on the next request.
    admin.ok(admin.patch(f"/admin/keys/{kid}", {"rpm": None}))
    client.chat.completions.create(model="kimi-k2", messages=MESSAGES)

    # Tokens per minute: the completion tokens are taken when the request settles.
    fake.set(usage={"prompt_tokens": 20, "completion_tokens": 190})
    tkey, _ = admin.key(aid, tpm=200)
    tclient = gw.client(tkey)
    tclient.chat.completions.create(model="kimi-k2", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as exc:
        tclient.chat.completions.create(model="kimi-k2", messages=MESSAGES)
    assert exc.value.code == "rate_limit_exceeded" and exc.value.param == "tpm"
    assert int(exc.value.response.headers["retry-after"]) >= 1
    # Streams too, refused before the upstream is called.
    calls = len(fake.requests)
    with pytest.raises(openai.RateLimitError):
        tclient.chat.completions.create(model="kimi-k2", messages=MESSAGES, stream=True)
    assert len(fake.requests) == calls
    # One key's limit does not touch another key of the same account.
    gw.client(key).chat.completions.create(model="kimi-k2", messages=MESSAGES)
