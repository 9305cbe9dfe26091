"""What an upload is: a safe file name and a kind, from the name's extension and the first bytes.

Kinds: ``pdf``, ``docx``, ``pptx``, ``xlsx``, ``csv``, ``html``, ``text`` (plain text,
Markdown, JSON, YAML and source code) and ``jsonl`` (batch input). Anything else is refused
with a message listing what is supported.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from smartoken.errors import InvalidRequest

MAX_NAME = 255

BINARY_KINDS = {
    ".pdf": ("pdf", "application/pdf"),
    ".docx": ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ".pptx": ("pptx",
              "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ".xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}
TEXT_KINDS = {
    ".csv": ("csv", "text/csv"),
    ".tsv": ("csv", "text/tab-separated-values"),
    ".html": ("html", "text/html"),
    ".htm": ("html", "text/html"),
    ".xhtml": ("html", "application/xhtml+xml"),
    ".md": ("text", "text/markdown"),
    ".markdown": ("text", "text/markdown"),
    ".jsonl": ("text", "application/jsonl"),
    ".json": ("text", "application/json"),
}
# Known formats we cannot read: refused up front rather than decoded as garbage.
UNSUPPORTED = frozenset({
    ".doc", ".xls", ".ppt", ".rtf", ".odt", ".ods", ".odp", ".epub", ".mobi", ".zip", ".gz",
    ".tar", ".7z", ".rar", ".exe", ".dll", ".so", ".bin", ".png", ".jpg", ".jpeg", ".gif",
    ".bmp", ".webp", ".tif", ".tiff", ".svgz", ".ico", ".mp3", ".mp4", ".wav", ".mov", ".avi",
})
SUPPORTED_TEXT = ("PDF, DOCX, PPTX, XLSX, CSV, HTML, Markdown, plain text and source code "
                  "(UTF-8, UTF-16 or GB18030)")


@dataclass(frozen=True, slots=True)
class Kind:
    kind: str
    media_type: str


def _bad_name(msg: str) -> InvalidRequest:
    return InvalidRequest(msg, param="file", code="invalid_filename")


def safe_filename(name: str | None) -> str:
    """Refuse (never rewrite) names that try to escape: separators, ``..``, NUL, controls."""
    if not name:
        raise _bad_name("The uploaded file has no file name; send one in the multipart "
                        "'filename' attribute.")
    if len(name) > MAX_NAME:
        raise _bad_name(f"The file name is {len(name)} characters long; the limit is "
                        f"{MAX_NAME}.")
    if "\x00" in name:
        raise _bad_name("The file name contains a NUL byte.")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise _bad_name("The file name contains control characters.")
    if "/" in name or "\\" in name or (len(name) > 1 and name[1] == ":"):
        raise _bad_name(f"The file name {name!r} contains a path; send the bare file name.")
    if name.strip() in (".", "..") or name.strip() != name or not name.strip(". "):
        raise _bad_name(f"The file name {name!r} is not a valid file name.")
    return name


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _looks_text(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16 with a byte-order mark
    return b"\x00" not in head


def detect(name: str, head: bytes, purpose: str) -> Kind:
    """The kind of an upload from its name and first bytes (at least 8 KiB when available)."""
    ext = _extension(name)
    if purpose == "batch":
        if ext not in ("", ".jsonl", ".json", ".txt") or not _looks_text(head):
            raise InvalidRequest("Files for purpose 'batch' must be JSONL: one JSON request "
                                 "object per line.", param="file", code="unsupported_file")
        return Kind("jsonl", "application/jsonl")
    if ext in BINARY_KINDS:
        kind, media = BINARY_KINDS[ext]
        magic = b"%PDF-" in head[:1024] if kind == "pdf" else head.startswith(b"PK\x03\x04")
        if not magic:
            label = ext[1:].upper()
            raise InvalidRequest(f"The file '{name}' is not a valid {label} file (its content "
                                 f"does not start like a {label}); it may be corrupt.",
                                 param="file", code="corrupt_file")
        return Kind(kind, media)
    if ext in UNSUPPORTED:
        raise InvalidRequest(f"Files of type '{ext}' are not supported. Supported: "
                             f"{SUPPORTED_TEXT}.", param="file", code="unsupported_file")
    if not _looks_text(head):
        raise InvalidRequest(f"The file '{name}' is binary and of no supported type. Supported: "
                             f"{SUPPORTED_TEXT}.", param="file", code="unsupported_file")
    kind, media = TEXT_KINDS.get(ext, ("text", "text/plain"))
    return Kind(kind, media)
