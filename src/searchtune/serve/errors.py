"""One JSON error shape for every route: ``{code, message, request_id}`` (DashScope's error keys, which Cohere/TEI
clients also display), plus ``limit``/``max`` when a limit was hit, so callers can see which one."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": uuid.uuid4().hex, **extra}


async def api_error_handler(request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.message, **exc.extra), status_code=exc.status, headers=exc.headers)


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = jsonable_encoder(exc.errors(), custom_encoder={bytes: lambda b: b.decode(errors="replace")})
    for err in errors:
        err.pop("input", None)  # never echo (possibly huge or secret) input back
        err.pop("ctx", None)
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
    message = f"invalid request: {where + ': ' if where else ''}{first.get('msg', 'malformed body')}"
    return JSONResponse(error_body("InvalidParameter", message, errors=errors), status_code=422)
