"""The first thing every request meets: a body-size limit (413) and the pipelines-index guard (403), both
answered in Elasticsearch's error shape and counted in ``/metrics`` (kind ``refused``), before any byte goes on.

The size limit (``--max-body-bytes``, defaults.py) is checked against ``Content-Length`` before reading and while
a chunked body streams in, so a 60 MB upload is refused without being held in memory.
"""

from __future__ import annotations

import json
import zlib

from searchtune.asgi_body import declared_length, read_limited, replay
from searchtune.gateway.defaults import DEFAULT_MAX_BODY_BYTES
from searchtune.gateway.index_guard import ProtectedIndex, decoded_body, refusal_reason
from searchtune.gateway.metrics import GatewayMetrics
from searchtune.gateway.proxy import error_body


class RequestScreen:
    """Pure ASGI middleware in front of the gateway app."""

    def __init__(self, app, protected: ProtectedIndex, metrics: GatewayMetrics,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.protected = protected
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > self.max_body_bytes:
            await self._refuse(send, 413, "content_too_long_exception", self._too_long(length))
            return
        body, received = await read_limited(receive, self.max_body_bytes)
        if body is None:
            if received > self.max_body_bytes:
                await self._refuse(send, 413, "content_too_long_exception", self._too_long(received, streamed=True))
            return  # else the client went away
        encoding = dict(scope.get("headers") or []).get(b"content-encoding", b"").decode("latin-1").strip().lower()
        inspectable = decoded_body(body, encoding, self.max_body_bytes) if body else b""
        if inspectable is None and encoding in ("gzip", "deflate"):  # the client's fault, not a refusal of rights
            if _inflates_past(body, encoding, self.max_body_bytes):
                await self._refuse(send, 413, "content_too_long_exception",
                                   f"request body inflates past the gateway's limit of {self.max_body_bytes} bytes")
            else:
                await self._refuse(send, 400, "parse_exception", f"request body is not valid {encoding} data")
            return
        reason = refusal_reason(self.protected, scope["method"], scope["path"],
                                scope.get("query_string", b"").decode("latin-1"), inspectable)
        if reason is not None:
            await self._refuse(send, 403, "security_exception", reason)
            return
        await self.app(scope, replay(body, receive), send)

    def _too_long(self, size: int, streamed: bool = False) -> str:
        return (f"request body of {'more than ' if streamed else ''}{size} bytes exceeds the gateway's limit of "
                f"{self.max_body_bytes} bytes (--max-body-bytes)")

    async def _refuse(self, send, status: int, error_type: str, reason: str) -> None:
        body = json.dumps(error_body(status, error_type, reason)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"x-elastic-product", b"Elasticsearch")]})
        await send({"type": "http.response.body", "body": body})
        self.metrics.requests.labels("refused", str(status)).inc()


def _inflates_past(body: bytes, encoding: str, limit: int) -> bool:
    """Whether a ``gzip``/``deflate`` body that could not be read decodes fine but to more than ``limit`` bytes."""
    try:
        inflater = zlib.decompressobj(wbits=47 if encoding == "gzip" else 15)
        return len(inflater.decompress(body, limit + 1)) > limit
    except zlib.error:
        return False
