"""Usage detail (the attempt chain, tokens, timings, cost, protocol) and the Files page (list,
upload, preview, delete), over HTTP against an in-process gateway (issue 17)."""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import add_user, http_session
from tests.harness import fake_config

PW = "pw-views-12345678"


def test_usage_detail_shows_the_attempt_chain(make_fake: Any, make_inproc: Any) -> None:
    broken, good = make_fake(status=500), make_fake(content="fine")
    gw = make_inproc(fake_config(broken, good, models={"kimi-k2": {"routes": [
        {"provider": "fake0", "upstream_model": "k-a", "priority": 10},
        {"provider": "fake1", "upstream_model": "k-b", "priority": 5}]}}))
    add_user(gw, "uma", PW, credit="5")
    key = gw.key(account="uma", name="detail-key")
    gw.client(key).chat.completions.create(model="kimi-k2", max_tokens=8,
                                           messages=[{"role": "user", "content": "hi"}])
    [rec] = gw.wait_usage(1)
    client, _ = http_session(gw, "uma", PW)
    assert f'href="/console/usage/{rec["id"]}"' in client.get("/console/usage").text
    page = client.get(f"/console/usage/{rec['id']}").text
    rows = re.findall(r'<tr data-route="([^"]+)">(.*?)</tr>', page, re.S)
    assert [r[0] for r in rows] == ["kimi-k2:fake0/k-a", "kimi-k2:fake1/k-b"]
    assert "500" in rows[0][1] and "ok" in rows[1][1]
    assert re.search(r"\d+ ms|&lt; 1 ms|< 1 ms", rows[0][1])  # each attempt's latency
    assert 'id="detail-protocol">chat<' in page and "detail-key" in page
    assert str(rec["prompt_tokens"]) in page
    add_user(gw, "other", PW)
    stranger, _ = http_session(gw, "other", PW)
    assert stranger.get(f"/console/usage/{rec['id']}").status_code == 404


def test_files_page_upload_preview_delete(make_inproc: Any) -> None:
    gw = make_inproc()
    add_user(gw, "fay", PW)
    client, csrf = http_session(gw, "fay", PW)
    assert 'id="no-files"' in client.get("/console/files").text
    r = client.post("/console/api/files", headers={"x-csrf-token": csrf},
                    files={"file": ("notes.md", b"# Notes\n\nThe code is 7741.", "text/markdown")})
    assert r.status_code == 200, r.text
    fid = r.json()["id"]
    listing = client.get("/console/files").text
    assert f'data-file-id="{fid}"' in listing and "notes.md" in listing
    preview = client.get(f"/console/files/{fid}").text
    assert "The code is 7741." in preview
    assert client.post("/console/api/files", files={"file": ("x.txt", b"x")}).status_code == 403
    add_user(gw, "gus", PW)
    other, other_csrf = http_session(gw, "gus", PW)
    assert other.get(f"/console/files/{fid}").status_code == 404
    assert other.post(f"/console/files/{fid}/delete", data={"csrf_token": other_csrf}
                      ).status_code == 404
    gone = client.post(f"/console/files/{fid}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 303
    assert f'data-file-id="{fid}"' not in client.get("/console/files").text
