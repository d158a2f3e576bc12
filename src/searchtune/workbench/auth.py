"""The gateway's rule for admin rights, applied to the workbench: open on loopback, an admin key beyond it.

The workbench shows the corpus and writes judgments, so when it listens on anything but a loopback address every
request needs the admin key: the ``X-Searchtune-Admin-Key`` header (what the gateway's admin APIs take) or, for a
browser, HTTP Basic with the key as the password (the browser asks once). Only the key's sha256 is kept and the
comparison is constant-time: the shared helper (:mod:`searchtune.keys`) the gateway and the model server use.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from searchtune.keys import key_matches

ADMIN_HEADER = "x-searchtune-admin-key"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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

    def __init__(self, app, key_hashes: list[str]) -> None:
        super().__init__(app)
        self.key_hashes = key_hashes

    async def dispatch(self, request: Request, call_next) -> Response:
        key = presented_key(request)
        if key is None or not key_matches(key, self.key_hashes):
            return JSONResponse({"error": "admin key required (X-Searchtune-Admin-Key or HTTP Basic password)"},
                                status_code=401, headers={"WWW-Authenticate": 'Basic realm="searchtune workbench"'})
        return await call_next(request)
