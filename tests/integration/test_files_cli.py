"""Issue 6: ``smartoken files upload|list|rm`` on the same database and store as a live
gateway; what the CLI uploads, the SDK reads, and the other way round."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fakes import documents
from tests.harness import Gateway


def cli(gw: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smartoken", "--data-dir", str(gw.data_dir),
                           "files", *args], env=gw.env, cwd=gw.tmp, capture_output=True,
                          text=True, timeout=120)


def test_cli_upload_list_rm_share_the_gateway_store(make_inproc: Any, tmp_path: Path) -> None:
    gw: Gateway = make_inproc()
    gw.account("carol")
    client = gw.client(gw.key("carol", credit="1"))
    doc = tmp_path / "handbook.docx"
    doc.write_bytes(documents.docx(paragraphs=3))
    up = cli(gw, "upload", str(doc), "--account", "carol", "--json")
    assert up.returncode == 0, up.stderr
    obj = json.loads(up.stdout)
    assert obj["filename"] == "handbook.docx" and obj["purpose"] == "file-extract"
    content = json.loads(client.files.content(obj["id"]).text)["content"]
    assert documents.sentence(2) in content

    via_api = client.files.create(file=("memo.txt", b"memo body"), purpose="user_data")
    listed = cli(gw, "list", "--account", "carol")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and via_api.id in lines[0] and obj["id"] in lines[1]
    assert cli(gw, "list", "--account", "admin").stdout == ""

    bad = cli(gw, "upload", str(doc), "--account", "carol", "--name", "../../x.docx")
    assert bad.returncode == 1 and "invalid_filename" in bad.stderr
    foreign = cli(gw, "rm", via_api.id, "--account", "admin")
    assert foreign.returncode == 1 and "No such File object" in foreign.stderr
    gone = cli(gw, "rm", via_api.id, obj["id"])
    assert gone.returncode == 0 and gone.stdout.count("deleted") == 2
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(obj["id"])
    assert client.files.list().data == []
    assert not [p for p in (gw.data_dir / "files" / "blobs").rglob("*") if p.is_file()]
