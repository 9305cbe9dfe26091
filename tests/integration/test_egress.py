"""Issue 12 items 6 and 7: nothing secret comes back from an upstream, redirects are not
followed, and private addresses are upstreams only by the operator's allow-list."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import httpx
import openai
import pytest

from smartoken.auth.secretbox import generate_key
from smartoken.config import ConfigError, load_settings
from smartoken.providers.egress import EgressConnector, EgressPolicy
from tests.fakes.hostile import HostileUpstream
from tests.fakes.upstream import FakeUpstream
from tests.inproc import InProcessGateway
from tests.moneykit import MASTER, AdminAPI

API_KEY = "upstream-secret-KEY-7f3a91c2"
HEADER_SECRET = "tenant-secret-hdr-5d20e8b4"
STORED_KEY = "stored-secret-KEY-0c6e52aa"
STORED_HEADER = "stored-secret-hdr-93b1f7d0"
SECRETS = (API_KEY, HEADER_SECRET, STORED_KEY, STORED_HEADER)
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def make_hostile() -> Iterator[Callable[..., HostileUpstream]]:
    made: list[HostileUpstream] = []

    def make(mode: str, location: str = "") -> HostileUpstream:
        h = HostileUpstream(mode, location).start()
        made.append(h)
        return h

    yield make
    for h in made:
        h.stop()


def _config(url: str) -> dict[str, object]:
    return {
        "providers": {"hostile": {
            "base_url": url, "api_key": API_KEY, "dialect": "openai",
            "headers": {"X-Tenant-Token": HEADER_SECRET},
            "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 20}}},
        "models": {"kimi-k2": {"routes": [{"provider": "hostile", "upstream_model": "m"}]}}}


def _ask(client: openai.OpenAI, stream: bool) -> str:
    """What the client received: the answer text, or the error's status and message."""
    try:
        if stream:
            out = []
            for chunk in client.chat.completions.create(model="kimi-k2", messages=MSG,
                                                        stream=True, max_tokens=20):
                out.append(str(chunk.model_dump()))
            return "".join(out)
        return str(client.chat.completions.create(model="kimi-k2", messages=MSG,
                                                  max_tokens=20).model_dump())
    except openai.APIError as exc:
        return f"{getattr(exc, 'status_code', '')} {exc.message} {exc.body}"


@pytest.mark.parametrize("mode, stream", [("echo_error", False), ("echo_error", True),
                                          ("echo_midstream", True), ("echo_answer", False),
                                          ("echo_answer", True)])
def test_no_configured_secret_leaves_or_is_stored(
        mode: str, stream: bool, make_hostile: Callable[..., HostileUpstream],
        make_inproc: Callable[..., InProcessGateway]) -> None:
    up = make_hostile(mode)
    gw = make_inproc(_config(up.base_url), env={"SMARTOKEN_MASTER_KEY": MASTER,
                                                "SMARTOKEN_SECRET_KEY": generate_key()})
    # A stored provider too: its key and header values are secrets as well.
    AdminAPI(gw).ok(AdminAPI(gw).post("/admin/providers", {
        "name": "stored", "dialect": "openai", "base_url": up.base_url, "api_key": STORED_KEY,
        "headers": {"X-Other": STORED_HEADER},
        "routes": [{"model": "deepseek-chat", "upstream_model": "m"}]}), 201)
    key = gw.key(account="app", credit="5")
    seen = [_ask(gw.client(key), stream)]
    try:
        r = gw.client(key).chat.completions.create(model="deepseek-chat", messages=MSG,
                                                   max_tokens=20)
        seen.append(str(r.model_dump()))
    except openai.APIError as exc:
        seen.append(f"{exc.message} {exc.body}")
    # The upstream did receive the secrets (so the echo is real).
    sent = " ".join(str(h) for _, h, _ in up.hits)
    assert API_KEY in sent and HEADER_SECRET in sent and STORED_KEY in sent
    assert any("upstream saw headers" in s or "***" in s for s in seen), seen
    records = gw.wait_usage(2)
    assert len(records) == 2
    usage = httpx.get(gw.base_url + "/account/usage", headers={"authorization": f"Bearer {key}"})
    everything = " ".join(seen) + str(records) + usage.text + gw.log()
    for secret in SECRETS:
        assert secret not in everything, (secret, mode, stream)


def test_a_secret_split_across_stream_chunks_is_scrubbed(
        make_hostile: Callable[..., HostileUpstream],
        make_inproc: Callable[..., InProcessGateway]) -> None:
    """Before: each event was scrubbed alone, and the upstream's key and header value, split
    across 7-character events, reached the client whole once it joined the deltas."""
    up = make_hostile("echo_split")
    gw = make_inproc(_config(up.base_url))
    key = gw.key(account="app", credit="5")
    text = "".join(chunk.choices[0].delta.content or ""
                   for chunk in gw.client(key).chat.completions.create(
                       model="kimi-k2", messages=MSG, stream=True, max_tokens=20)
                   if chunk.choices)
    assert text.startswith("partial answer upstream saw headers"), text
    assert text.count("***") >= 2, text  # the key (in Authorization) and the header value
    [record] = gw.wait_usage(1)
    assert record["status"] == "ok"
    for secret in (API_KEY, HEADER_SECRET):
        assert secret not in text + str(record) + gw.log(), secret


def test_upstream_redirects_are_not_followed(make_hostile: Callable[..., HostileUpstream],
                                             make_fake: Callable[..., FakeUpstream],
                                             make_inproc: Callable[..., InProcessGateway]
                                             ) -> None:
    target = make_fake()  # another local port: records whether it was hit
    up = make_hostile("redirect", location=target.base_url.rstrip("/"))
    gw = make_inproc(_config(up.base_url))
    client = gw.client(gw.key(account="app", credit="5"))
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            _ask_raw(client, stream)
        assert caught.value.status_code in (502, 503)
        assert "redirect" in str(caught.value.message)
    assert len(up.hits) >= 2 and target.requests == []
    records = gw.wait_usage(2)
    assert [r["http_status"] for r in records] == [caught.value.status_code] * 2
    assert all(r["cost_micro"] == 0 for r in records)


def _ask_raw(client: openai.OpenAI, stream: bool) -> None:
    if stream:
        for _ in client.chat.completions.create(model="kimi-k2", messages=MSG, stream=True):
            pass
    else:
        client.chat.completions.create(model="kimi-k2", messages=MSG)


@pytest.mark.parametrize("url, allow, ok", [
    ("http://10.1.2.3/v1", "", False),
    ("http://10.1.2.3/v1", "10.0.0.0/8", True),
    ("http://169.254.169.254/latest", "10.0.0.0/8", False),
    ("http://[::1]:8080/v1", "", False),
    ("http://[::ffff:127.0.0.1]/v1", "", False),
    ("http://localhost:9/v1", "", False),
    ("http://localhost:9/v1", "localhost", True),
    ("http://192.168.1.5/v1", "ollama.internal,192.168.1.0/24", True),
    ("https://api.example.com/v1", "", True),
    ("http://8.8.8.8/v1", "", True),
])
def test_private_base_urls_need_the_allow_list(tmp_path: Path, url: str, allow: str,
                                               ok: bool) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"providers:\n  up: {{base_url: '{url}', api_key: k}}\n")
    env = {"SMARTOKEN_PRIVATE_UPSTREAMS": allow}
    if ok:
        assert load_settings(cfg, env=env).providers["up"].base_url == url
    else:
        with pytest.raises(ConfigError, match="private_upstreams"):
            load_settings(cfg, env=env)


def test_bad_allow_list_entries_are_named(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("private_upstreams: ['10.0.0.0/8', 'not a host!']\n")
    with pytest.raises(ConfigError, match="not a host"):
        load_settings(cfg, env={})


def test_admin_api_refuses_private_base_urls(make_inproc: Callable[..., InProcessGateway]
                                             ) -> None:
    gw = make_inproc(None, env={"SMARTOKEN_MASTER_KEY": MASTER,
                                "SMARTOKEN_SECRET_KEY": generate_key()})
    admin = AdminAPI(gw)
    before = gw.sql("SELECT * FROM stored_providers")
    for url in ("http://169.254.169.254/v1", "http://10.0.0.1/v1", "http://[fd00::1]/v1"):
        r = admin.post("/admin/providers", {"name": "meta", "base_url": url, "api_key": "k"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "private_address", r.text
    assert gw.sql("SELECT * FROM stored_providers") == before


def test_the_connector_checks_resolved_addresses(fake: FakeUpstream) -> None:
    """A name that resolves to a private address is refused on connection, whatever the URL
    check said; allowed by network or by name it connects."""
    port = fake.base_url.split(":")[2].split("/")[0]

    async def get(policy: EgressPolicy) -> int:
        async with aiohttp.ClientSession(connector=EgressConnector(policy)) as s, \
                s.get(f"http://localhost:{port}/v1/models") as r:
            return r.status

    for policy in (EgressPolicy(), EgressPolicy.parse(["10.0.0.0/8"])):
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            asyncio.run(get(policy))
        assert "private_upstreams" in str(caught.value.os_error)
    assert asyncio.run(get(EgressPolicy.parse(["127.0.0.0/8", "::1"]))) == 200
    assert asyncio.run(get(EgressPolicy.parse(["localhost"]))) == 200
