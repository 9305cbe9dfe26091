"""The console's Files page: list, upload (the Files API's service, the account's own files),
preview of the extracted text, delete. The playground attaches files through the same upload.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smartoken.api.files import MULTIPART_SLACK, _bounded, _files
from smartoken.api.http import JSONResponse
from smartoken.console.http import Ctx
from smartoken.errors import InvalidRequest
from smartoken.files.records import page
from smartoken.files.service import too_large

LIST_LIMIT = 200
PREVIEW_CHARS = 20_000


async def files_page(ctx: Ctx) -> Response:
    rows, more = await page(ctx.state.engine, ctx.user.id, limit=LIST_LIMIT)
    return ctx.render("files.html", files=rows, more=more)


async def upload(ctx: Ctx) -> Response:
    """POST /console/api/files: multipart ``file`` (+ ``purpose``, default ``file-extract``),
    bounded like ``POST /v1/files``; answers the file object."""
    state, request = ctx.state, ctx.request
    files = _files(state)
    file_limit = files.limits.max_file_bytes
    limit = file_limit + MULTIPART_SLACK
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), file_limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("Upload the file as multipart/form-data.",
                             code="invalid_content_type")
    bounded = Request(request.scope, _bounded(request.receive, limit, file_limit))
    async with bounded.form(max_files=1, max_fields=8, max_part_size=64 * 1024) as form:
        item = form.get("file")
        purpose = form.get("purpose") or "file-extract"
        if item is None or isinstance(item, str):
            raise InvalidRequest("Choose a file to upload.", param="file",
                                 code="missing_required_parameter")
        row = await files.create(state.engine, account_id=ctx.user.id, key_id=None,
                                 filename=item.filename, purpose=purpose, src=item.file)
    return JSONResponse(row.to_api())


async def preview(ctx: Ctx) -> Response:
    files = _files(ctx.state)
    row = await files.get(ctx.state.engine, ctx.user.id, ctx.request.path_params["file_id"])
    text = await files.text(row) if row.text_sha256 is not None else None
    return ctx.render("file.html", f=row, text=None if text is None else text[:PREVIEW_CHARS],
                      truncated=text is not None and len(text) > PREVIEW_CHARS)


async def delete(ctx: Ctx) -> Response:
    files = _files(ctx.state)
    await files.delete(ctx.state.engine, ctx.user.id, ctx.request.path_params["file_id"])
    return RedirectResponse("/console/files", 303)
