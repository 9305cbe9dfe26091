"""Issue 13: the inbound-protocol seam. Every usage record notes the client protocol it came in
by; a refusal is shaped by the protocol of the endpoint that refused it."""

from __future__ import annotations

from typing import Any

import pytest

from smartoken.protocols.base import InboundProtocol
from smartoken.protocols.chat import PROTOCOL as CHAT
from smartoken.protocols.embeddings import PROTOCOL as EMBEDDINGS
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway, fake_config


@pytest.fixture
def gw(fake: FakeUpstream, make_inproc: Any) -> Gateway:
    return make_inproc(fake_config(fake))


def test_each_usage_record_notes_its_protocol(gw: Gateway, fake: FakeUpstream) -> None:
    fake.set(content="hi", usage={"prompt_tokens": 10, "completion_tokens": 2})
    client = gw.client(gw.key(credit="10"))
    client.chat.completions.create(model="kimi-k2", messages=[{"role": "user", "content": "x"}])
    list(client.chat.completions.create(model="kimi-k2", stream=True,
                                        messages=[{"role": "user", "content": "x"}]))
    client.embeddings.create(model="demo-embedding", input="hello")
    recs = gw.wait_usage(3)
    assert sorted(r["protocol"] for r in recs) == ["chat", "chat", "embeddings"]


def test_protocol_modules_satisfy_the_contract() -> None:
    protocols: list[InboundProtocol] = [CHAT, EMBEDDINGS]
    assert [p.name for p in protocols] == ["chat", "embeddings"]
    assert [p.operation for p in protocols] == ["complete", "embed"]
