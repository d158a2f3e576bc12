"""Bearer API keys and request-size limits.

Keys are kept only as sha256 digests and compared with :func:`hmac.compare_digest` against every stored digest
(constant time, no early exit), so neither memory dumps nor timing reveal a key. A missing key is 401, a wrong one
403. The body-size limit is enforced while the body streams in, so a huge upload is refused without being buffered.
"""

from __future__ import annotations

import json

from fastapi import Request

from searchtune.asgi_body import declared_length, read_limited, replay
from searchtune.keys import key_matches
from searchtune.serve.errors import ApiError, error_body


def make_auth_dependency(key_hashes: list[str]):
    async def require_key(request: Request) -> None:
        if not key_hashes:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Unauthorized", "missing bearer API key (Authorization: Bearer <key>)",
                           headers={"WWW-Authenticate": "Bearer"})
        if not key_matches(token.strip(), key_hashes):
            raise ApiError(403, "Forbidden", "invalid API key")

    return require_key


class BodySizeLimit:
    """Pure ASGI middleware: 413 with a JSON body naming ``max_body_bytes`` when a body is larger than the limit."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = declared_length(scope)
        if length is not None and length > self.max_bytes:
            return await self._reject(scope, send, length)
        # Read the body here (FastAPI buffers it anyway), refusing as soon as it passes the limit, then replay it.
        body, received = await read_limited(receive, self.max_bytes)
        if body is None:
            return await self._reject(scope, send, received) if received > self.max_bytes else None  # else: client left
        await self.app(scope, replay(body, receive), send)

    async def _reject(self, scope, send, size: int) -> None:
        body = json.dumps(error_body("PayloadTooLarge", f"request body of {size} bytes exceeds max_body_bytes="
                                     f"{self.max_bytes}", 413, scope.get("path", ""), limit="max_body_bytes",
                                     max=self.max_bytes, actual=size)).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
