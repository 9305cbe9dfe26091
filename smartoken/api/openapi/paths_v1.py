"""Paths for applications: the relay (/v1/chat/completions, /v1/embeddings), the model
catalog, the Files API, and the unauthenticated probes and documents."""

from __future__ import annotations

from smartoken.api.files import MAX_LIST
from smartoken.api.openapi.common import (
    JSON,
    KEY,
    PUBLIC,
    json_body,
    op,
    path_param,
    query_param,
    ref,
)
from smartoken.files.service import PURPOSES

RELAY_ERRORS = (400, 402, 403, 404, 413, 429, 502, 503, 504)
FILE_ID = [path_param("file_id", {"type": "string"}, "A file id (file-...)")]
# The Files API answers 400 files_unavailable on every operation when it is not enabled.
FILES_OFF = 400


def relay_paths() -> JSON:
    chat_ok = {"description": "A chat.completion, or an SSE stream of chat.completion.chunk "
                              "when stream is true",
               "content": {"application/json": {"schema": ref("ChatCompletion")},
                           "text/event-stream": {"schema": {"type": "string"}}}}
    return {
        "/v1/chat/completions": {"post": op(
            "createChatCompletion", KEY, chat_ok, RELAY_ERRORS,
            body="ChatCompletionRequest")},
        "/v1/embeddings": {"post": op(
            "createEmbedding", KEY, json_body(ref("Embeddings")), RELAY_ERRORS,
            body="EmbeddingsRequest")},
        "/v1/models": {"get": op("listModels", KEY, json_body(ref("ModelList")), ())},
        "/v1/models/{model_id}": {"get": op(
            "retrieveModel", KEY, json_body(ref("Model")), (404,),
            params=[path_param("model_id", {"type": "string"},
                               "A model id; may contain '/'")])},
    }


def files_paths() -> JSON:
    upload = {"required": True, "content": {"multipart/form-data": {
        "schema": ref("FileUpload")}}}
    create = op("createFile", KEY, json_body(ref("File")), (FILES_OFF, 413),
                summary="Upload a file (multipart/form-data)")
    create["requestBody"] = upload
    content_ok = {"description": "For purpose file-extract, the extracted text as JSON; "
                                 "otherwise the original bytes, with the media type detected "
                                 "at upload and a Content-Disposition attachment header (so a JSON "
                                 "file of another purpose comes back as application/json)",
                  "content": {"application/json": {"schema": ref("FileText")},
                              "*/*": {"schema": {"type": "string",
                                                 "contentMediaType": "*/*"}}}}
    content = op("downloadFile", KEY, content_ok, (FILES_OFF, 404), params=FILE_ID,
                 summary="A file's extracted text (file-extract) or original bytes")
    content["responses"]["500"]["description"] += " (file_content_missing: the stored bytes " \
        "are gone)"
    return {
        "/v1/files": {
            "get": op("listFiles", KEY, json_body(ref("FileList")), (FILES_OFF,),
                      params=[
                          query_param("limit", {"type": "integer", "minimum": 1,
                                                "maximum": MAX_LIST, "default": MAX_LIST},
                                      "Page size"),
                          query_param("order", {"enum": ["asc", "desc"], "default": "desc"},
                                      "By creation time"),
                          query_param("purpose", {"enum": list(PURPOSES)},
                                      "Only files of this purpose"),
                          query_param("after", {"type": "string"},
                                      "A file id: list the files after it")]),
            "post": create,
        },
        "/v1/files/{file_id}": {
            "get": op("retrieveFile", KEY, json_body(ref("File")), (FILES_OFF, 404),
                      params=FILE_ID),
            "delete": op("deleteFile", KEY, json_body(ref("FileDeleted")), (FILES_OFF, 404),
                         params=FILE_ID),
        },
        "/v1/files/{file_id}/content": {"get": content},
    }


def public_paths() -> JSON:
    readyz = op("readyz", PUBLIC, json_body(ref("Status")), (), probe=True)
    readyz["responses"]["503"] = json_body(ref("Status"), "Not ready, or draining")
    return {
        "/healthz": {"get": op("healthz", PUBLIC, json_body(ref("Status")), (), probe=True)},
        "/readyz": {"get": readyz},
        "/metrics": {"get": op("metrics", PUBLIC, {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}}}, (), probe=True)},
        "/openapi.json": {"get": op("openapi", PUBLIC, json_body({"type": "object"}), ())},
        **{f"/webhooks/{name}": {"post": webhook(name, label)}
           for name, label in (("stripe", "Stripe"), ("paypal", "PayPal"))},
    }


def webhook(name: str, label: str) -> JSON:
    """A payment provider's webhook (docs/payments.md): verified by its signature, applied
    once; 404 provider_not_configured when the provider is not set up."""
    received = {"type": "object", "required": ["received", "outcome"], "properties": {
        "received": {"const": True},
        "outcome": {"enum": ["credited", "duplicate", "unknown_payment", "nothing_to_do",
                             "ignored"]}}}
    out = op(f"{name}Webhook", PUBLIC, json_body(received), (400, 404, 413, 503),
             summary=f"{label} webhook events (signed by {label}): credits, refunds, disputes")
    out["requestBody"] = {"required": True, "content": {"application/json": {
        "schema": {"type": "object"}}}}
    return out
