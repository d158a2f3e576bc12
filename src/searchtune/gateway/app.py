"""The gateway's ASGI app: Elasticsearch's REST API in front of a real cluster, plus search pipelines.

This module only wires the parts: routes (admin.py: pipeline and default-pipeline APIs, health, metrics;
search.py: ``[/{index}]/_search``; msearch.py: ``[/{index}]/_msearch``; compat.py: ``GET|HEAD /``; proxy.py:
everything else, byte for byte, ``Authorization`` included), per-route metrics, the raw-ASGI fast path
(fast_proxy.py) in front, and around the gateway's own routes compressed request bodies decoded (encoding.py) and
``X-Elastic-Product`` set (product.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from searchtune.gateway import admin, compat
from searchtune.gateway.encoding import DecodeRequestBodies
from searchtune.gateway.fast_proxy import FastProxy
from searchtune.gateway.msearch import msearch_endpoint
from searchtune.gateway.pipeline_store import StoreError
from searchtune.gateway.limits import RequestScreen
from searchtune.gateway.product import ProductHeader
from searchtune.gateway.proxy import es_error, proxy
from searchtune.gateway.search import search_endpoint
from searchtune.gateway.service import Gateway, GatewaySettings

__all__ = ["Gateway", "GatewaySettings", "create_app"]

log = logging.getLogger("searchtune.gateway")
Handler = Callable[[Gateway, Request], Awaitable[Response]]
_ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]


def _measured(gateway: Gateway, kind: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint around ``handler``: counts and times it under ``kind`` (a handler may refine it through
    ``request.state.kind``) and answers the cluster's refusal of a pipeline-store call with the cluster's body."""

    async def endpoint(request: Request) -> Response:
        began = time.perf_counter()
        request.state.kind = kind
        try:
            response = await handler(gateway, request)
        except StoreError as exc:
            body = exc.body if isinstance(exc.body, dict) else {"error": str(exc.body), "status": exc.status}
            response = JSONResponse(body, status_code=exc.status)
        except Exception as exc:  # noqa: BLE001 - a bug must still answer in ES's shape and be counted
            log.exception("gateway error", extra={"event": "error", "kind": request.state.kind})
            response = es_error(500, "gateway_exception", f"{type(exc).__name__} in the gateway (see its log)")
        kind_now = request.state.kind
        gateway.metrics.requests.labels(kind_now, str(response.status_code)).inc()
        gateway.metrics.request_seconds.labels(kind_now).observe(time.perf_counter() - began)
        return response

    return endpoint


def _route(gateway: Gateway, path: str, kind: str, handler: Handler, methods: list[str]) -> Route:
    route = Route(path, _measured(gateway, kind, handler), methods=methods)
    if "HEAD" not in methods:  # Starlette adds HEAD to GET routes; HEAD of these paths is the cluster's business
        route.methods.discard("HEAD")
    return route


def routes(gateway: Gateway) -> list[Route]:
    """Specific routes first; a method a route does not take falls through to the catch-all proxy."""
    search_methods = ["GET", "POST"]
    return [
        _route(gateway, "/", "info", compat.root, ["GET", "HEAD"]),
        _route(gateway, "/_search/pipeline", "pipeline_api", admin.list_pipelines, _ALL_METHODS),
        _route(gateway, "/_search/pipeline/{name}", "pipeline_api", admin.pipeline, _ALL_METHODS),
        _route(gateway, "/_searchtune/default_pipeline/{index}", "pipeline_api", admin.default_pipeline, _ALL_METHODS),
        _route(gateway, "/_searchtune/health", "admin", admin.health, _ALL_METHODS),
        _route(gateway, "/metrics", "admin", admin.metrics, ["GET"]),
        _route(gateway, "/_search", "proxy", search_endpoint, search_methods),
        _route(gateway, "/{index}/_search", "proxy", search_endpoint, search_methods),
        _route(gateway, "/_msearch", "msearch", msearch_endpoint, search_methods),
        _route(gateway, "/{index}/_msearch", "msearch", msearch_endpoint, search_methods),
        _route(gateway, "/{path:path}", "proxy", proxy, _ALL_METHODS),
    ]


class _CollapseSlashes:
    """Route on the path with empty segments dropped (``//_search/pipeline/`` is ``/_search/pipeline``), as the
    gateway always has; the proxy still forwards the client's raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "http":
            parts = [p for p in scope["path"].split("/") if p]
            scope = {**scope, "path": "/" + "/".join(parts)}
        await self.app(scope, receive, send)


def create_app(settings: GatewaySettings) -> RequestScreen:
    """The gateway's ASGI app (``.state.gateway`` is the :class:`Gateway`): the request screen (size limit,
    pipelines-index guard: limits.py), then the fast proxy, then the routes."""
    gateway = Gateway(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = Starlette(routes=routes(gateway), lifespan=lifespan)
    app.state.gateway = gateway
    own_routes = ProductHeader(DecodeRequestBodies(app), gateway.product)
    screen = RequestScreen(FastProxy(gateway, _CollapseSlashes(own_routes), app.state), gateway.protected,
                           gateway.metrics, settings.max_body_bytes)
    screen.state = app.state  # callers holding the outermost app reach the gateway as before
    return screen
