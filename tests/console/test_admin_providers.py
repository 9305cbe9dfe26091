"""Issue 14: an operator runs the gateway from the console alone — adds a provider with its
vendor keys and routes, tests it, reprices a model, and moves traffic by disabling a route;
every change is live at once and audited."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from smartoken.auth.secretbox import generate_key
from smartoken.money import Price, parse_usd
from tests.console.conftest import ConsoleGateway, admin_password, sign_in
from tests.fakes.upstream import FakeUpstream
from tests.harness import Gateway

MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    f = FakeUpstream(usage={"prompt_tokens": 1000, "completion_tokens": 500},
                     models=["up-a", "up-b"]).start()
    yield f
    f.stop()


@pytest.fixture
def ops_gw(tmp_path: Path) -> Iterator[Gateway]:
    gw = ConsoleGateway(tmp_path, env={"SMARTOKEN_SECRET_KEY": generate_key()}).start()
    yield gw
    gw.stop()


def test_operator_adds_tests_reprices_and_moves_traffic(ops_gw: Gateway, fake: FakeUpstream,
                                                        new_page: Callable[..., Page]) -> None:
    gw = ops_gw
    page = new_page(gw)
    sign_in(page, "admin", admin_password(gw))
    page.goto("/console/admin/routes")
    page.click("#manage-providers")
    expect(page.locator("#no-stored")).to_be_visible()
    # A provider with a key pool (the first key is revoked at the vendor) and two routes.
    fake.set(usage={"prompt_tokens": 1000, "completion_tokens": 500}, models=["up-a", "up-b"],
             key_status={"vendor-key-revoked-0001": 401})
    page.fill("#provider-form input[name=name]", "moon")
    page.select_option("#provider-form select[name=dialect]", "openai")
    page.fill("#provider-form input[name=base_url]", fake.base_url)
    page.fill("#provider-form textarea[name=api_keys]",
              "vendor-key-revoked-0001\nvendor-key-good-0002 2")
    page.fill("#provider-form textarea[name=routes]", "kimi-k2 up-a 100 1\nkimi-k2 up-b 50 1")
    page.click("#save-provider")
    expect(page.locator("#saved-note")).to_be_visible()
    row = page.locator("#stored-table tr[data-provider=moon]")
    expect(row).to_contain_text("up-a")
    expect(row.locator("td.num")).to_have_text("2")
    # Test: a real call through the pool, and the upstream's model list.
    row.locator("button[data-test=moon]").click()
    expect(page.locator("#test-result")).to_contain_text("answered")
    expect(page.locator("#test-models")).to_have_text("up-a, up-b")
    # A bad form is refused with the API's message and stores nothing.
    page.goto("/console/admin/providers")
    page.fill("#provider-form input[name=name]", "bad")
    page.fill("#provider-form input[name=base_url]", "ftp://nope")
    page.fill("#provider-form textarea[name=routes]", "kimi-k2")
    page.click("#save-provider")
    expect(page.locator("#admin-error")).to_contain_text("base_url")
    # Reprice kimi-k2.6 (what kimi-k2 is billed as).
    page.select_option("#price-form select[name=model]", "kimi-k2.6")
    page.fill("#price-form input[name=input]", "2.00")
    page.fill("#price-form input[name=output]", "10.00")
    page.click("#save-price")
    expect(page.locator("#priced-note")).to_be_visible()
    client = gw.client(gw.key(credit="10"))
    client.chat.completions.create(model="kimi-k2", messages=MSG, max_tokens=600)
    assert fake.requests[-1]["model"] == "up-a"
    [rec] = gw.wait_usage(1)
    assert rec["provider"] == "moon"
    assert rec["cost_micro"] == Price(parse_usd("2.00"), parse_usd("10.00")).cost(1000, 500)
    # A new model with its prices and capabilities; a duplicate id is refused.
    page.fill("#model-form input[name=id]", "team-kimi")
    page.select_option("#model-form select[name=family]", "kimi")
    page.fill("#model-form input[name=context_window]", "32000")
    page.fill("#model-form input[name=max_output]", "4000")
    page.fill("#model-form input[name=input]", "1.00")
    page.fill("#model-form input[name=output]", "2.00")
    page.check("#model-form input[name=capabilities][value=tools]")
    page.click("#add-model")
    expect(page.locator("#added-note")).to_be_visible()
    page.fill("#model-form input[name=id]", "team-kimi")
    page.fill("#model-form input[name=context_window]", "32000")
    page.fill("#model-form input[name=max_output]", "4000")
    page.fill("#model-form input[name=input]", "1")
    page.fill("#model-form input[name=output]", "1")
    page.click("#add-model")
    expect(page.locator("#admin-error")).to_contain_text("already exists")
    listed = {m.id: m for m in client.models.list().data}
    assert listed["team-kimi"].model_extra["capabilities"] == ["tools"]
    assert listed["team-kimi"].model_extra["context_window"] == 32000
    # Disable the first route (traffic moves to up-b at once) and route the new model.
    page.goto("/console/admin/providers?edit=moon")
    page.fill("#provider-form textarea[name=routes]", "kimi-k2 up-a 100 1 off\n"
              "kimi-k2 up-b 50 1\nteam-kimi up-c 10 1")
    page.click("#save-provider")
    expect(page.locator("#saved-note")).to_be_visible()
    for _ in range(3):
        client.chat.completions.create(model="kimi-k2", messages=MSG, max_tokens=600)
        assert fake.requests[-1]["model"] == "up-b"
    client.chat.completions.create(model="team-kimi", messages=MSG, max_tokens=600)
    assert fake.requests[-1]["model"] == "up-c"
    team = [r for r in gw.wait_usage(5) if r["model"] == "team-kimi"]
    assert team and team[0]["cost_micro"] == Price(parse_usd("1"), parse_usd("2")).cost(1000, 500)
    # Keys were kept (the edit left the box empty): the good key still answers.
    used = [h.get("Authorization") for h in fake.headers]
    assert used[-1] == "Bearer vendor-key-good-0002"
    # Every change is audited with the console user as the actor.
    audit = gw.sql("SELECT actor, action, target FROM audit_log ORDER BY id")
    assert [(a["action"], a["target"]) for a in audit] == [
        ("provider.create", "provider:moon"), ("catalog.import", "catalog"),
        ("catalog.import", "catalog"), ("provider.update", "provider:moon")]
    assert {a["actor"] for a in audit} == {"console:admin"}
    # Delete it: kimi-k2 goes back to the demo provider.
    page.locator("button[data-delete=moon]").click()
    expect(page.locator("#deleted-note")).to_be_visible()
    before = len(fake.requests)
    client.chat.completions.create(model="kimi-k2", messages=MSG, max_tokens=20)
    assert len(fake.requests) == before
    html = page.content()
    assert "vendor-key-good-0002" not in html and "vendor-key-revoked-0001" not in html
    assert page.js_errors == []  # type: ignore[attr-defined]


def test_non_admin_cannot_manage_providers(ops_gw: Gateway, new_page: Callable[..., Page]
                                           ) -> None:
    from tests.console.conftest import add_user, http_session

    add_user(ops_gw, "eve", "eve-password-1")
    client, csrf = http_session(ops_gw, "eve", "eve-password-1")
    for path in ("/console/admin/providers", "/console/admin/prices",
                 "/console/admin/providers/x/test", "/console/admin/providers/x/delete"):
        r = client.post(path, data={"csrf_token": csrf, "name": "x", "base_url":
                                    "http://127.0.0.1:1", "model": "kimi-k2.6", "input": "1",
                                    "output": "1"})
        assert r.status_code == 403, (path, r.status_code)
    assert client.get("/console/admin/providers").status_code == 403
    assert ops_gw.sql("SELECT * FROM stored_providers") == []
