"""The Files API, OpenAI-compatible: ``POST/GET /v1/files``, ``GET/DELETE /v1/files/{id}``,
``GET /v1/files/{id}/content``.

Files belong to the API key's account; another account's id is a 404. For purpose
``file-extract`` the content endpoint answers like Moonshot's: a JSON object whose ``content``
is the extracted text (``{"content", "file_type", "filename", "title", "type": "file"}``), so
``client.files.content(id).text`` can be put in a system message as-is. For other purposes it
returns the original bytes.

Uploads are bounded: the body may not pass the per-file limit plus a small allowance for the
multipart framing, checked on the declared length and again while reading.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive

from smartoken.api.http import JSONResponse, app_state, authenticate
from smartoken.errors import GatewayError, InvalidRequest
from smartoken.files.records import page
from smartoken.files.service import Files, too_large
from smartoken.state import AppState

MULTIPART_SLACK = 64 * 1024
MAX_LIST = 10000


def _files(state: AppState) -> Files:
    files: Files | None = getattr(state, "files", None)
    if files is None:
        raise InvalidRequest("The Files API is not enabled on this gateway.",
                             code="files_unavailable")
    return files


def _bounded(receive: Receive, limit: int, file_limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(seen, file_limit)
        return message

    return wrapped


async def create_file(request: Request) -> Response:
    state = app_state(request)
    key = await authenticate(request)
    files = _files(state)
    file_limit = files.limits.max_file_bytes
    limit = file_limit + MULTIPART_SLACK
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), file_limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("Upload files as multipart/form-data with the fields 'file' and "
                             "'purpose'.", code="invalid_content_type")
    bounded = Request(request.scope, _bounded(request.receive, limit, file_limit))
    async with bounded.form(max_files=1, max_fields=16, max_part_size=64 * 1024) as form:
        upload = form.get("file")
        purpose = form.get("purpose")
        if upload is None or isinstance(upload, str):
            raise InvalidRequest("Missing required parameter: 'file' (a file part).",
                                 param="file", code="missing_required_parameter")
        row = await files.create(state.engine, account_id=key.account_id, key_id=key.key_id,
                                 filename=upload.filename, purpose=purpose, src=upload.file)
    return JSONResponse(row.to_api())


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise InvalidRequest(f"Invalid value for '{name}': must be an integer between {lo} "
                             f"and {hi}.", param=name, code="invalid_value")
    return value


async def list_files(request: Request) -> Response:
    state = app_state(request)
    key = await authenticate(request)
    q = request.query_params
    limit = _int_param(request, "limit", MAX_LIST, 1, MAX_LIST)
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("Invalid value for 'order': expected 'asc' or 'desc'.",
                             param="order", code="invalid_value")
    purpose = q.get("purpose") or None
    if purpose is not None:
        _files(state).check_purpose(purpose)
    rows, more = await page(state.engine, key.account_id, purpose=purpose,
                            after=q.get("after") or None, limit=limit, order=order)
    data = [r.to_api() for r in rows]
    return JSONResponse({"object": "list", "data": data,
                         "first_id": data[0]["id"] if data else None,
                         "last_id": data[-1]["id"] if data else None, "has_more": more})


async def retrieve_file(request: Request) -> Response:
    state = app_state(request)
    key = await authenticate(request)
    row = await _files(state).get(state.engine, key.account_id, request.path_params["file_id"])
    return JSONResponse(row.to_api())


async def delete_file(request: Request) -> Response:
    state = app_state(request)
    key = await authenticate(request)
    row = await _files(state).delete(state.engine, key.account_id,
                                     request.path_params["file_id"])
    return JSONResponse({"id": row.id, "object": "file", "deleted": True})


def _disposition(filename: str) -> str:
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def file_content(request: Request) -> Response:
    state = app_state(request)
    key = await authenticate(request)
    files = _files(state)
    row = await files.get(state.engine, key.account_id, request.path_params["file_id"])
    if row.purpose == "file-extract":
        body: dict[str, Any] = {"content": await files.text(row), "file_type": row.media_type,
                                "filename": row.filename, "title": "", "type": "file"}
        return JSONResponse(body)
    if not await asyncio.to_thread(files.store.exists, row.sha256):
        raise GatewayError(f"The content of '{row.id}' is missing from the file store.",
                           code="file_content_missing")
    return StreamingResponse(files.chunks(row), media_type=row.media_type,
                             headers={"content-length": str(row.bytes),
                                      "content-disposition": _disposition(row.filename)})


def routes() -> list[Route]:
    return [
        Route("/v1/files", create_file, methods=["POST"]),
        Route("/v1/files", list_files, methods=["GET"]),
        Route("/v1/files/{file_id}", retrieve_file, methods=["GET"]),
        Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
    ]
