"""Per-request metrics and the model-fingerprint header, as a plain ASGI middleware.

Why not ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs every response through a streaming
wrapper and an extra task; on a query embedding (a 12-token forward) that wrapper was a visible share of the
event loop's time in py-spy, and the event loop competes with the inference thread for the GIL. This class only
wraps ``send``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from searchtune.serve.routes.common import REQUEST_START

FINGERPRINT_HEADER = b"x-searchtune-model-fingerprint"


class ObserveRequests:
    """Counts requests by route and status, observes their latency, and names the weights that answered
    (the gateway compares that fingerprint with the one an index recorded before it trusts a kNN search)."""

    def __init__(self, app: ASGIApp, metrics, fingerprint: Callable[[], str | None]) -> None:
        self.app, self.metrics, self.fingerprint = app, metrics, fingerprint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        REQUEST_START.set(time.monotonic())
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                fingerprint = self.fingerprint()
                if fingerprint:
                    message["headers"] = [*message.get("headers", []), (FINGERPRINT_HEADER, fingerprint.encode())]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            label = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(label, str(status)).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - start)
