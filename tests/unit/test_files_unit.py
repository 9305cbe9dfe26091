"""Issue 6 units: blob store, upload names and kinds, text extraction of every format."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from smartoken.errors import InvalidRequest
from smartoken.files.detect import detect, safe_filename
from smartoken.files.extract import ExtractError, extract_path
from smartoken.files.storage import BlobMissing, BlobTooLarge, LocalBlobStore
from tests.fakes import documents


def test_blob_store_stages_privately_and_commits_atomically(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "files").open()
    data = b"x" * 3_000_000
    staged = store.stage(io.BytesIO(data), limit=len(data))
    assert staged.sha256 == hashlib.sha256(data).hexdigest() and staged.size == len(data)
    assert staged.path.parent == store.tmp and not store.exists(staged.sha256)
    assert list(store.blobs.rglob("*.part")) == []
    store.commit(staged)
    assert store.exists(staged.sha256) and list(store.tmp.iterdir()) == []
    assert store.path(staged.sha256).stat().st_mode & 0o777 == 0o600
    assert store.read(staged.sha256) == data
    assert b"".join(store.chunks(staged.sha256)) == data
    again = store.stage_bytes(data)  # same content: same address, commit is idempotent
    store.commit(again)
    assert [p.name for p in store.blobs.rglob("*") if p.is_file()] == [staged.sha256]
    store.delete(staged.sha256)
    with pytest.raises(BlobMissing):
        store.read(staged.sha256)
    with pytest.raises(BlobMissing):
        list(store.chunks(staged.sha256))


def test_blob_store_refuses_oversized_input_and_leaves_no_temp(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path).open()
    with pytest.raises(BlobTooLarge) as exc:
        store.stage(io.BytesIO(b"y" * 5000), limit=4096)
    assert exc.value.size > 4096
    assert list(store.tmp.iterdir()) == [] and list(store.blobs.iterdir()) == []
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


def test_stale_temporary_files_are_swept_at_open(tmp_path: Path) -> None:
    import os

    store = LocalBlobStore(tmp_path).open()
    old, new = store.tmp / "old.part", store.tmp / "new.part"
    old.write_bytes(b"crash leftover")
    new.write_bytes(b"in flight")
    os.utime(old, (1, 1))
    LocalBlobStore(tmp_path).open()
    assert not old.exists() and new.exists()


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a/b.txt", "a\\b.txt",
                                  "C:\\x.txt", "C:x.txt", "a\x00b", "a\nb.txt", "..", ".",
                                  " lead.txt", "", "x" * 256, "a\u202eb.txt"])
def test_path_tricks_in_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        safe_filename(name)
    assert exc.value.code == "invalid_filename"


@pytest.mark.parametrize("name", ["report.pdf", "数据.xlsx", "notes v2.final.md", ".env",
                                  "Makefile"])
def test_ordinary_names_pass(name: str) -> None:
    assert safe_filename(name) == name


def test_kinds_from_extension_and_magic() -> None:
    assert detect("a.pdf", b"%PDF-1.7\n", "file-extract").kind == "pdf"
    assert detect("a.DOCX", b"PK\x03\x04", "user_data").kind == "docx"
    assert detect("main.py", b"print(1)", "assistants").kind == "text"
    assert detect("page.htm", b"<p>x</p>", "assistants").kind == "html"
    assert detect("t.tsv", b"a\tb", "assistants").kind == "csv"
    assert detect("in.jsonl", b"{}", "batch").kind == "jsonl"
    assert detect("u16.txt", "hé".encode("utf-16"), "assistants").kind == "text"
    for name, head, code in [("a.pdf", b"GIF89a", "corrupt_file"),
                             ("a.xlsx", b"%PDF", "corrupt_file"),
                             ("a.doc", b"\xd0\xcf\x11\xe0", "unsupported_file"),
                             ("a.dat", b"\x00\x01", "unsupported_file"),
                             ("a.png", b"\x89PNG", "unsupported_file"),
                             ("a.pdf", b"%PDF-1.7", "unsupported_file")]:
        purpose = "batch" if code == "unsupported_file" and name == "a.pdf" else "user_data"
        with pytest.raises(InvalidRequest) as exc:
            detect(name, head, purpose)
        assert exc.value.code == code, name


def _extract(tmp_path: Path, name: str, data: bytes, kind: str, limit: int = 10**7) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return extract_path(str(p), kind, limit) or ""


def test_every_format_yields_its_text(tmp_path: Path) -> None:
    s0, s1 = documents.sentence(0), documents.sentence(1)
    pdf = _extract(tmp_path, "a.pdf", documents.pdf(pages=2, lines=1), "pdf")
    assert s0 in pdf and s1 in pdf
    docx = _extract(tmp_path, "a.docx", documents.docx(paragraphs=2), "docx")
    assert "Quarterly river report" in docx and s1 in docx and "Lumen-North\t4200" in docx
    pptx = _extract(tmp_path, "a.pptx", documents.pptx(slides=2), "pptx")
    assert "Slide title 1" in pptx and s1 in pptx
    xlsx = _extract(tmp_path, "a.xlsx", documents.xlsx(rows=2), "xlsx")
    assert "--- Sheet: Flows ---" in xlsx and f"S1,100,{s1}" in xlsx
    html = _extract(tmp_path, "a.html", b"<html><head><title>T</title><style>p{}</style>"
                    b"</head><body><p>Para</p><script>evil()</script></body></html>", "html")
    assert html == "T\n\nPara"
    assert _extract(tmp_path, "a.csv", b"a,b\r\n1,2\r\n", "csv") == "a,b\n1,2"
    assert _extract(tmp_path, "g.txt", "长文档".encode("gb18030"), "text") == "长文档"
    assert _extract(tmp_path, "u.txt", "héllo".encode("utf-16"), "text") == "héllo"
    assert _extract(tmp_path, "b.md", b"\xef\xbb\xbf# Title", "text") == "# Title"


def test_extraction_failures_have_codes(tmp_path: Path) -> None:
    cases = [("enc.pdf", documents.pdf(pages=1, password="pw"), "pdf", "encrypted_file"),
             ("bad.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 8, "pdf", "corrupt_file"),
             ("bad.docx", b"PK\x03\x04garbage", "docx", "corrupt_file"),
             ("bad.xlsx", b"PK\x03\x04garbage", "xlsx", "corrupt_file"),
             ("blank.txt", b"\n \n", "text", "no_text"),
             ("bad.jsonl", b'{"a": 1}\n[1, 2]\n', "jsonl", "invalid_jsonl")]
    for name, data, kind, code in cases:
        with pytest.raises(ExtractError) as exc:
            _extract(tmp_path, name, data, kind)
        assert exc.value.code == code, name
    with pytest.raises(ExtractError) as exc:
        _extract(tmp_path, "big.txt", b"word " * 100, "text", limit=50)
    assert exc.value.code == "too_much_text" and "limit is 50" in exc.value.message


def test_file_limits_come_from_the_files_section(tmp_path: Path) -> None:
    from smartoken.config import ConfigError, FileLimits, load_settings

    assert load_settings(None, env={}).files == FileLimits()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("files: {max_file_mb: 0.5, max_total_mb: 3, max_files: 7, "
                   "extract_timeout: 9}\n")
    lim = load_settings(cfg, env={}).files
    assert (lim.max_file_bytes, lim.max_total_bytes, lim.max_files, lim.extract_timeout) == (
        512 * 1024, 3 * 1024 * 1024, 7, 9.0)
    for bad in ("files: {max_file_mb: 0}", "files: {max_files: -1}", "files: {colour: red}",
                "files: [1]"):
        cfg.write_text(bad + "\n")
        with pytest.raises(ConfigError) as exc:
            load_settings(cfg, env={})
        assert "files" in str(exc.value)
