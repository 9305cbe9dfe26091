"""What a newcomer tripped on (issue 17): the start banner's command, packaging warnings."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from smartoken.invocation import cli_command

ROOT = Path(__file__).resolve().parents[2]


def test_banner_names_the_venv_script_when_the_venv_is_not_active(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "smartoken").write_text("#!/bin/sh\n")
    (bin_ / "smartoken").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_ / "python"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert cli_command(tmp_path) == ".venv/bin/smartoken"
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert cli_command(elsewhere) == str(bin_ / "smartoken")
    monkeypatch.setenv("PATH", f"{bin_}:/usr/bin")  # activated: the bare command works
    assert cli_command(tmp_path) == "smartoken"


def test_pyproject_license_is_an_spdx_string() -> None:
    # setuptools >= 77 warns "`project.license` as a TOML table is deprecated" on every
    # `make serve` install when the license is a table.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert isinstance(project["project"]["license"], str)
    assert not any("License ::" in c for c in project["project"].get("classifiers", []))
    assert "setuptools>=77" in project["build-system"]["requires"]
