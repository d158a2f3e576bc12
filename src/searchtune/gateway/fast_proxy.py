"""Raw-ASGI fast path for plain proxying. Most traffic involves no pipeline; skipping Starlette's request and
response objects for it keeps the gateway's added latency low (its budget is under 2 ms). Anything special (the
gateway's own APIs, ``GET /``, pipeline searches, ``_msearch``) goes on to the Starlette app."""

from __future__ import annotations

import json
import time

from starlette.datastructures import State
from starlette.types import ASGIApp

from searchtune.gateway.proxy import HOP_BY_HOP, error_body
from searchtune.gateway.service import PIPELINE_HEADER, Gateway
from searchtune.gateway.upstream import UpstreamError

_SPECIAL_ROOTS = ("_search", "_msearch", "_searchtune", "metrics")
_AUTH = (b"authorization", b"es-security-runas-user")


class FastProxy:
    def __init__(self, gateway: Gateway, app: ASGIApp, state: State) -> None:
        self.gateway = gateway
        self.app = app
        self.state = state  # the Starlette app's (``.gateway``), for callers holding the outermost app

    async def _plain(self, scope: dict) -> bool:
        parts = [p for p in scope["path"].split("/") if p]
        if not parts:
            return False  # the root: compat.py answers it for clusters without the route
        if parts[0] in _SPECIAL_ROOTS or parts[-1] == "_msearch":
            return False
        if len(parts) == 2 and parts[1] == "_search":
            query = scope.get("query_string", b"")
            if b"search_pipeline" in query or b"expand_wildcards" in query:
                return False
            if any(k == PIPELINE_HEADER.encode() for k, _ in scope["headers"]):
                return False
            auth = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _AUTH}
            return await self.gateway.default_pipeline(parts[0], auth) is None
        return True

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http" or not await self._plain(scope):
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
                   if k.decode("latin-1") not in HOP_BY_HOP]
        query = scope.get("query_string", b"")
        target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        method = scope["method"]
        try:
            upstream = await self.gateway.upstream.request(method, target, headers, b"".join(chunks))
            status, body = upstream.status, upstream.body
            out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in upstream.headers
                   if k.lower() not in HOP_BY_HOP or (method == "HEAD" and k.lower() == "content-length")]
        except UpstreamError as exc:
            status = 502
            body = json.dumps(error_body(502, "gateway_exception", str(exc))).encode()
            out = [(b"content-type", b"application/json"), (b"x-elastic-product", b"Elasticsearch")]
        if method != "HEAD":
            out.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        self.gateway.metrics.requests.labels("proxy", str(status)).inc()
        self.gateway.metrics.request_seconds.labels("proxy").observe(time.perf_counter() - began)
