"""Issue 14: `smartoken config import/export` move providers and their routes between the
configuration file and the database, keys encrypted, checked like `serve` checks a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from smartoken.auth.secretbox import generate_key
from smartoken.cli.main import main
from tests.inproc import InProcessGateway

SECRET = generate_key()
POOL_KEY = "vendor-pool-key-AAAA1111"


def cli(data: Path, *args: str, **env: str) -> Any:
    full = {"SMARTOKEN_SECRET_KEY": SECRET, "SMARTOKEN_CONFIG": "", "POOL_KEY_2": POOL_KEY,
            "SMARTOKEN_PRIVATE_UPSTREAMS": "127.0.0.0/8,::1,localhost",
            **env}
    return CliRunner().invoke(main, ["--data-dir", str(data), *args], env=full,
                              catch_exceptions=False)


def config_file(tmp_path: Path, fake: Any) -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump({
        "providers": {
            "moon": {"dialect": "moonshot", "base_url": fake.base_url,
                     "api_keys": ["vendor-first-key-0001", {"key_env": "POOL_KEY_2",
                                                            "weight": 3}],
                     "headers": {"X-Team": "team-secret-hdr"}},
            "deep": {"base_url": fake.base_url, "api_key": "vendor-deep-key-0003",
                     "timeouts": {"total": 99}}},
        "models": {"kimi-k2": {"routes": [{"provider": "moon", "upstream_model": "kimi-up",
                                           "priority": 7, "weight": 2}]},
                   "deepseek-chat": {"routes": [{"provider": "deep", "enabled": False}]}}}))
    return path


def test_import_serve_export_round_trip(tmp_path: Path, make_fake: Any) -> None:
    fake = make_fake()
    data = tmp_path / "gw" / "data"  # where the gateway below keeps its data
    path = config_file(tmp_path, fake)
    out = cli(data, "config", "import", str(path))
    assert out.exit_code == 0, out.output
    assert "2 provider(s) stored: deep, moon" in out.output
    again = cli(data, "config", "import", str(path))
    assert again.exit_code == 1 and "already stored: deep, moon (use --replace)" in again.output
    assert cli(data, "config", "import", str(path), "--replace").exit_code == 0
    # Served from the database by a gateway started without the file.
    gw = InProcessGateway(tmp_path / "gw", None, {"SMARTOKEN_SECRET_KEY": SECRET}).start()
    try:
        assert gw.data_dir == data
        client = gw.client(gw.key(credit="5"))
        client.chat.completions.create(model="kimi-k2",
                                       messages=[{"role": "user", "content": "x"}])
        assert fake.requests[-1]["model"] == "kimi-up"
        assert fake.headers[-1]["X-Team"] == "team-secret-hdr"
        assert fake.headers[-1]["Authorization"] in (f"Bearer {POOL_KEY}",
                                                     "Bearer vendor-first-key-0001")
    finally:
        gw.stop()
    plain = cli(data, "config", "export")
    assert plain.exit_code == 0, plain.output
    for secret in ("vendor-first-key-0001", POOL_KEY, "vendor-deep-key-0003",
                   "team-secret-hdr"):
        assert secret not in plain.output
    doc = yaml.safe_load(plain.output)
    assert doc["providers"]["moon"]["api_keys"] == [
        {"key_env": "MOON_API_KEY_1", "weight": 1}, {"key_env": "MOON_API_KEY_2", "weight": 3}]
    assert doc["providers"]["deep"]["api_key_env"] == "DEEP_API_KEY"
    assert doc["providers"]["deep"]["timeouts"]["total"] == 99
    assert doc["models"]["kimi-k2"]["routes"] == [
        {"provider": "moon", "upstream_model": "kimi-up", "priority": 7, "weight": 2,
         "enabled": True}]
    assert doc["models"]["deepseek-chat"]["routes"][0]["enabled"] is False
    full = cli(data, "config", "export", "--secrets")
    again_path = tmp_path / "again.yaml"
    again_path.write_text(full.output)
    other = tmp_path / "other"
    assert cli(other, "config", "import", str(again_path)).exit_code == 0
    assert cli(other, "config", "export", "--secrets").output.split("\n", 2)[2] == \
        full.output.split("\n", 2)[2]
    audit = audit_rows(data)
    assert [(a["actor"], a["action"]) for a in audit] == [
        ("cli", "provider.create"), ("cli", "provider.create"), ("cli", "provider.update"),
        ("cli", "provider.update")]


def audit_rows(data: Path) -> list[dict[str, Any]]:
    import asyncio

    from sqlalchemy import text

    from smartoken.store.db import make_engine

    async def go() -> list[dict[str, Any]]:
        engine = make_engine(f"sqlite+aiosqlite:///{data / 'smartoken.db'}")
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM audit_log ORDER BY id"))).mappings()
            out = [dict(r) for r in rows]
        await engine.dispose()
        return out

    return asyncio.run(go())


def test_import_refuses_a_bad_file_and_stores_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  x: {base_url: ftp://nope}\n")
    out = cli(data, "config", "import", str(bad))
    assert out.exit_code == 1 and "providers.x.base_url" in out.output
    missing = tmp_path / "missing.yaml"
    missing.write_text("providers:\n  y: {base_url: 'http://127.0.0.1:1', api_key_env: NOPE}\n")
    out = cli(data, "config", "import", str(missing))
    assert out.exit_code == 1 and "has no key" in out.output
    nokey = cli(data, "config", "import", str(missing), SMARTOKEN_SECRET_KEY="")
    assert nokey.exit_code == 1 and "SMARTOKEN_SECRET_KEY" in nokey.output
    assert cli(data, "config", "export").output.count("providers: {}") == 1
