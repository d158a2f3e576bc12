"""Which product the cluster behind the gateway is, and the ``X-Elastic-Product`` header that follows from it.

The gateway speaks for the cluster, so the responses it makes itself (pipeline admin, pipeline searches, errors,
health) carry ``X-Elastic-Product: Elasticsearch`` in front of Elasticsearch: elasticsearch-py refuses a 2xx without
it, so a new client whose first call is pipeline admin would fail. In front of OpenSearch they never carry it, as
OpenSearch's own responses do not. Other parts ask :attr:`ClusterProduct.is_opensearch` where the engines differ
(native OpenSearch pipelines, native_pipelines.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from searchtune.gateway.upstream import Upstream, UpstreamError

ELASTICSEARCH, OPENSEARCH = "elasticsearch", "opensearch"
_PRODUCT_HEADER = b"x-elastic-product"
#: How long an unidentified cluster (down, or behind auth) is left alone before it is asked again.
_RETRY_S = 5.0
_ASK_TIMEOUT_S = 5.0


class ClusterProduct:
    """The cluster's product, asked (``GET /``) until known, then kept; ``None`` while unknown."""

    def __init__(self) -> None:
        self.name: str | None = None
        self._asked_at = -_RETRY_S

    async def detect(self, upstream: Upstream, auth: Mapping[str, str] | None = None) -> str | None:
        """Elasticsearch stamps every answer (errors included) with ``X-Elastic-Product``; OpenSearch names itself
        in ``version.distribution``. A cluster that is down or refuses the caller stays unknown for a few seconds."""
        if self.name is not None or time.monotonic() - self._asked_at < _RETRY_S:
            return self.name
        self._asked_at = time.monotonic()
        try:  # bounded: the gateway asks this while starting, and a hung cluster must not hold that up
            response = await asyncio.wait_for(upstream.request_json("GET", "/", dict(auth or {})), _ASK_TIMEOUT_S)
        except (UpstreamError, asyncio.TimeoutError):
            return None
        if dict((k.lower(), v) for k, v in response.headers).get("x-elastic-product") == "Elasticsearch":
            self.name = ELASTICSEARCH
        else:
            try:
                info = response.json()
            except ValueError:
                info = None
            if isinstance(info, dict) and (info.get("version") or {}).get("distribution") == OPENSEARCH:
                self.name = OPENSEARCH
        return self.name

    @property
    def is_opensearch(self) -> bool:
        return self.name == OPENSEARCH


class ProductHeader:
    """ASGI middleware around the gateway's own routes: ``X-Elastic-Product: Elasticsearch`` on every response
    unless the cluster is known to be OpenSearch (then the header is removed, as OpenSearch never sends it)."""

    def __init__(self, app: ASGIApp, product: ClusterProduct) -> None:
        self.app = app
        self.product = product

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _PRODUCT_HEADER]
                if not self.product.is_opensearch:
                    headers.append((_PRODUCT_HEADER, b"Elasticsearch"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)
