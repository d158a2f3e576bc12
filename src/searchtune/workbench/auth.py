"""The gateway's rule for admin rights, applied to the workbench: open on loopback, an admin key beyond it.

The workbench shows the corpus and writes judgments, so when it listens on anything but a loopback address every
request needs the admin key: the ``X-Searchtune-Admin-Key`` header (what the gateway's admin APIs take) or, for a
browser, HTTP Basic with the key as the password (the browser asks once). Only the key's sha256 is kept, and the
comparison is constant-time (``hmac.compare_digest``), as the model server does for its bearer keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ADMIN_HEADER = "x-searchtune-admin-key"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def presented_key(request: Request) -> str | None:
    """The key a request carries: the admin header, or the password of HTTP Basic."""
    if request.headers.get(ADMIN_HEADER):
        return request.headers[ADMIN_HEADER]
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value, validate=True).decode().partition(":")[2]
    except (binascii.Error, UnicodeDecodeError):
        return None


class AdminKeyMiddleware(BaseHTTPMiddleware):
    """Refuse (401) every request without the admin key; never echoes what was sent."""

    def __init__(self, app, digest: bytes) -> None:
        super().__init__(app)
        self.digest = digest

    async def dispatch(self, request: Request, call_next) -> Response:
        key = presented_key(request)
        if key is None or not hmac.compare_digest(key_digest(key), self.digest):
            return JSONResponse({"error": "admin key required (X-Searchtune-Admin-Key or HTTP Basic password)"},
                                status_code=401, headers={"WWW-Authenticate": 'Basic realm="searchtune workbench"'})
        return await call_next(request)
