"""Text extraction, run in a small process pool so a large file never blocks the event loop.

``extract_path`` is the worker function (plain, picklable arguments); ``Extractor`` owns the
pool and turns worker failures into ``ExtractError``. Libraries: pypdf, python-docx,
python-pptx, openpyxl, selectolax (HTML).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # the pool's machinery is imported with the first file
    from concurrent.futures import ProcessPoolExecutor

_BLANKS = re.compile(r"\n{3,}")


class ExtractError(Exception):
    """A file that cannot be read: ``code`` is the API error code, ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code, self.message = code, message


# ------------------------------------------------------------------ decoders (worker side)


def decode_text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise ExtractError("unsupported_file", "The file is neither UTF-8, UTF-16 nor GB18030 "
                           "text.") from None


def _pdf(path: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError

    reader = PdfReader(path, strict=False)
    if reader.is_encrypted:
        try:
            ok = bool(reader.decrypt(""))
        except Exception:
            ok = False
        if not ok:
            raise ExtractError("encrypted_file", "The PDF is encrypted with a password; upload "
                               "a copy without the password.")
    try:
        pages = [page.extract_text() or "" for page in reader.pages]
    except FileNotDecryptedError:
        raise ExtractError("encrypted_file", "The PDF is encrypted; upload a copy without the "
                           "password.") from None
    return "\n\n".join(p.strip() for p in pages)


def _docx(path: str) -> str:
    import docx

    document = docx.Document(path)
    out = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            out.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(out)


def _pptx(path: str) -> str:
    from pptx import Presentation

    out = []
    for i, slide in enumerate(Presentation(path).slides, 1):
        out.append(f"--- Slide {i} ---")
        for shape in slide.shapes:
            if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
                out.append(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                for row in shape.table.rows:
                    out.append("\t".join(c.text for c in row.cells))
    return "\n".join(out)


def _xlsx(path: str) -> str:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for ws in wb.worksheets:
            out.write(f"--- Sheet: {ws.title} ---\n")
            for row in ws.iter_rows(values_only=True):
                if any(v is not None for v in row):
                    writer.writerow(["" if v is None else v for v in row])
        return out.getvalue()
    finally:
        wb.close()


def _html(data: bytes) -> str:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(decode_text(data))
    for node in tree.css("script, style, noscript, template"):
        node.decompose()
    title = tree.css_first("title")
    root = tree.body or tree.root
    text = root.text(separator="\n", strip=True) if root is not None else ""
    if title is not None and title.text(strip=True) and root is not tree.root:
        text = title.text(strip=True) + "\n\n" + text
    return text


def _jsonl(data: bytes) -> None:
    text = decode_text(data)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ExtractError("invalid_jsonl", f"Line {n} is not valid JSON: {exc}.") from None
        if not isinstance(obj, dict):
            raise ExtractError("invalid_jsonl", f"Line {n} is not a JSON object.")


LABELS = {"pdf": "PDF", "docx": "DOCX", "pptx": "PPTX", "xlsx": "XLSX", "html": "HTML"}


def extract_path(path: str, kind: str, max_chars: int) -> str | None:
    """Worker entry point: the text of the file at ``path`` (``None`` for batch input)."""
    try:
        if kind == "pdf":
            text = _pdf(path)
        elif kind == "docx":
            text = _docx(path)
        elif kind == "pptx":
            text = _pptx(path)
        elif kind == "xlsx":
            text = _xlsx(path)
        else:
            data = Path(path).read_bytes()
            if kind == "jsonl":
                _jsonl(data)
                return None
            text = _html(data) if kind == "html" else decode_text(data)
    except ExtractError:
        raise
    except MemoryError:
        raise ExtractError("file_too_complex", "The file needs too much memory to read.") from None
    except Exception as exc:
        label = LABELS.get(kind, "text")
        raise ExtractError("corrupt_file", f"The file could not be read as {label}: "
                           f"{type(exc).__name__}: {str(exc)[:200]}") from None
    text = _BLANKS.sub("\n\n", text.replace("\r\n", "\n").replace("\x00", "")).strip()
    if not text:
        raise ExtractError("no_text", "No text could be extracted from the file (a scanned "
                           "PDF needs OCR, which SmarToken does not do).")
    if len(text) > max_chars:
        raise ExtractError("too_much_text", f"The file yields {len(text)} characters of text; "
                           f"the limit is {max_chars}.")
    return text


# ------------------------------------------------------------------ the pool (gateway side)


class Extractor:
    """A process pool for extraction. Processes start on first use (``spawn``), and the
    process machinery is imported then (a gateway that never reads a file never loads it)."""

    def __init__(self, workers: int = 1, timeout: float = 120.0) -> None:
        self.workers, self.timeout = workers, timeout
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.workers,
                                             mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def extract(self, path: Path, kind: str, max_chars: int) -> str | None:
        from concurrent.futures.process import BrokenProcessPool

        loop = asyncio.get_running_loop()
        fut: Any = loop.run_in_executor(self._executor(), extract_path, str(path), kind,
                                        max_chars)
        try:
            return await asyncio.wait_for(fut, self.timeout)
        except TimeoutError:
            raise ExtractError("extraction_timeout", f"Reading the file took longer than "
                               f"{self.timeout:g} s.") from None
        except BrokenProcessPool:
            self.close()  # a worker died (memory, crash): the next call starts a fresh pool
            raise ExtractError("file_too_complex", "The extraction worker died reading the "
                               "file (too large or malformed).") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
