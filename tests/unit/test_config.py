from pathlib import Path

import pytest

from smartoken.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "smartoken.yaml"
    p.write_text(text)
    return p


def test_defaults_route_every_model_to_demo_without_keys() -> None:
    s = load_settings(None, env={})
    routed = {r.model for r in s.routes}
    assert "kimi-k2" in routed and "moonshot-v1-2m" in routed
    assert {r.provider for r in s.routes} == {"demo"}
    assert len({m.family for m in s.catalog.models.values()}) >= 18  # 17 families + demo


def test_vendor_key_enables_its_preset_and_drops_demo_for_that_family() -> None:
    s = load_settings(None, env={"MOONSHOT_API_KEY": "k", "MOONSHOT_BASE_URL": "http://x/v1"})
    kimi = [r for r in s.routes if r.model == "kimi-k2"]
    assert [(r.provider, r.upstream_model) for r in kimi] == [
        ("moonshot", "kimi-k2.6")]  # kimi-k2 retired by Moonshot
    assert s.providers["moonshot"].base_url == "http://x/v1"
    assert [r.provider for r in s.routes if r.model == "deepseek-chat"] == ["demo"]


def test_yaml_models_and_routes(tmp_path: Path) -> None:
    path = write(tmp_path, """
providers:
  up: {base_url: "http://127.0.0.1:1/v1", api_key_env: UP_KEY}
models:
  my-model:
    family: kimi
    context_window: 1000
    input_price: "1.5"
    output_price: 3
    routes: [{provider: up, upstream_model: real, priority: 5, weight: 2}]
""")
    s = load_settings(path, env={"UP_KEY": "secret", "SMARTOKEN_PRIVATE_UPSTREAMS": "127.0.0.1"})
    spec = s.catalog.models["my-model"]
    assert spec.price.input == 1_500_000 and spec.price.output == 3_000_000
    assert s.providers["up"].api_key == "secret"
    [route] = [r for r in s.routes if r.model == "my-model"]
    assert (route.provider, route.upstream_model, route.priority, route.weight) == (
        "up", "real", 5, 2)


@pytest.mark.parametrize(("text", "key"), [
    ("colour: blue", "colour"),
    ("providers: {p: {base_url: ftp://x}}", "providers.p.base_url"),
    ("providers: {p: {base_url: 'http://x', dialect: klingon}}", "providers.p.dialect"),
    ("models: {m: {family: kimi}}", "models.m.context_window"),
    ("models: {kimi-k2: {input_price: '0.0000001'}}", "models.kimi-k2.input_price"),
    ("models: {kimi-k2: {routes: [{provider: nobody}]}}", "models.kimi-k2.routes"),
    ("timezone: Mars/Olympus", "timezone"),
    ("port: -1", "port"),
    ("models: [1, 2]", "models"),
    ("[unclosed", "<file>"),
])
def test_errors_name_file_key_and_problem(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert err.value.key == key and str(path) in str(err.value)
