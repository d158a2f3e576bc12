"""One error shape for every error, in each dialect's own keys.

Every error body has ``code``, ``message`` and ``request_id`` (DashScope's keys, which Cohere clients display too),
plus ``limit``/``max``/``actual`` when a limit was hit. Routes whose clients read a different key get it as well,
so their SDKs show our message instead of a parse failure: OpenAI routes add ``error: {message, type, param,
code}`` (what the openai SDK reads), TEI routes add ``error`` (a string) and ``error_type`` (what
huggingface_hub reads). The framework's own errors (unknown route 404, wrong method 405, malformed JSON, invalid
fields) go through the same builder, so no ``{"detail": ...}`` body ever leaves the server.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

OPENAI_PATHS = ("/v1/embeddings", "/v1/models")
TEI_PATHS = ("/", "/rerank", "/embed", "/embed_all", "/similarity", "/predict", "/info", "/tokenize")
TEI_TYPES = {400: "validation", 404: "not_found", 413: "validation", 422: "validation", 429: "overloaded",
             503: "unhealthy", 504: "backend"}
OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "invalid_request_error", 422: "invalid_request_error",
                429: "rate_limit_error"}
HTTP_CODES = {400: "InvalidParameter", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
              405: "MethodNotAllowed", 413: "PayloadTooLarge", 415: "UnsupportedMediaType", 422: "InvalidParameter",
              429: "Throttling", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra


def dialect(path: str) -> str:
    if path in OPENAI_PATHS:
        return "openai"
    if path in TEI_PATHS:
        return "tei"
    return "default"


def error_body(code: str, message: str, status: int = 400, path: str = "", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": uuid.uuid4().hex, **extra}
    kind = dialect(path)
    if kind == "openai":
        body["error"] = {"message": message, "type": OPENAI_TYPES.get(status, "api_error"),
                         "param": extra.get("param"), "code": code}
    elif kind == "tei":
        body["error"] = message
        body["error_type"] = TEI_TYPES.get(status, "backend")
    return body


def error_response(request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    body = error_body(code, message, status, request.url.path, **extra)
    return JSONResponse(body, status_code=status, headers=headers)


async def api_error_handler(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(request, exc.status, exc.code, exc.message, exc.headers, **exc.extra)


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's 404/405/... in our shape (the framework would answer ``{"detail": ...}``)."""
    status = exc.status_code
    if status == 404:
        message = f"no route {request.method} {request.url.path}; see /docs for the routes this server has"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(request, status, HTTP_CODES.get(status, "Error"), message, getattr(exc, "headers", None))


def _invalid_text(errors: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((e for e in errors if e.get("type") in ("invalid_text", "string_unicode")), None)


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Invalid fields: 422 naming the first field; text that is not valid Unicode (a lone surrogate such as
    ``\\ud800`` from a JSON escape) is 400 ``InvalidText``: the request is wrong, not just its schema."""
    errors = jsonable_encoder(exc.errors(), custom_encoder={bytes: lambda b: b.decode(errors="replace"),
                                                            str: lambda s: s.encode("utf-8", "replace").decode()})
    for err in errors:
        err.pop("input", None)  # never echo (possibly huge or secret) input back
        err.pop("ctx", None)
    bad_text = _invalid_text(errors)
    first = bad_text or (errors[0] if errors else {})
    where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
    if bad_text is not None:
        return error_response(request, 400, "InvalidText", f"{where}: text is not valid Unicode (lone surrogate "
                              f"or invalid escape); send UTF-8 text", param=where, errors=errors)
    message = f"invalid request: {where + ': ' if where else ''}{first.get('msg', 'malformed body')}"
    return error_response(request, 422, "InvalidParameter", message, param=where or None, errors=errors)
