"""The gateway's ASGI app: Elasticsearch's REST API in front of a real cluster, plus search pipelines.

Routes handled here (everything else is proxied byte for byte, ``Authorization`` included):

* ``PUT|GET|DELETE /_search/pipeline/{name}``, ``GET /_search/pipeline``: pipeline definitions (see pipelines.py),
  stored on the cluster (store.py);
* ``GET|POST /{index}/_search`` with ``?search_pipeline=NAME`` or an index default pipeline
  (``PUT /_searchtune/default_pipeline/{index} {"pipeline": NAME}``; ``search_pipeline=_none`` opts out): search.py;
  ``/_search`` without an index, and ``_msearch`` (split into pipeline searches run concurrently) too;
* ``GET /metrics`` (Prometheus), ``GET /_searchtune/health``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from searchtune.search.gateway.breaker import OPEN, BreakerRegistry
from searchtune.search.gateway.metrics import GatewayMetrics
from searchtune.search.gateway.pipelines import PipelineError, redact
from searchtune.search.gateway.rerank_client import RerankClient
from searchtune.search.gateway.search import CONSUMED_PARAMS, plan_request, rerank_response
from searchtune.search.gateway.store import DEFAULT_INDEX, PipelineStore, StoreError
from searchtune.search.gateway.upstream import Upstream, UpstreamError, UpstreamResponse

log = logging.getLogger("searchtune.gateway")

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "expect",
               "transfer-encoding", "upgrade", "host", "content-length"}


@dataclass
class GatewaySettings:
    """Everything a gateway process is configured with (CLI flags / env vars map onto these)."""

    es_url: str
    timeout_s: float = 0.5  # model call budget per search
    es_timeout_s: float = 120.0
    breaker_failures: int = 3
    breaker_reset_s: float = 10.0
    pipeline_index: str = DEFAULT_INDEX
    cache_ttl_s: float = 1.0
    models: dict[str, str] = field(default_factory=dict)  # model_id -> endpoint, for the OpenSearch shape
    default_pipelines: dict[str, str] = field(default_factory=dict)  # index -> pipeline, static


def error_body(status: int, error_type: str, reason: str) -> dict[str, Any]:
    cause = {"type": error_type, "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def es_error(status: int, error_type: str, reason: str) -> JSONResponse:
    """An error body shaped like Elasticsearch's, so clients raise their usual exceptions."""
    return JSONResponse(error_body(status, error_type, reason), status_code=status,
                        headers={"X-elastic-product": "Elasticsearch"})


def _forward_headers(request: Request, drop_encoding: bool = False) -> list[tuple[str, str]]:
    headers = []
    for name, value in request.headers.raw:
        lower = name.decode("latin-1").lower()
        if lower in _HOP_BY_HOP or (drop_encoding and lower == "accept-encoding"):
            continue
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    return headers


def _json_content_type(headers: list[tuple[str, str]]) -> str:
    """Content-Type for a JSON body we send on the client's behalf. Elasticsearch insists that a compatible-with
    version on Accept is matched on Content-Type (elasticsearch-py sends ``...+json; compatible-with=9``), and an
    ``_msearch`` client's ``+x-ndjson`` becomes ``+json`` for the single searches it is split into."""
    found = {name.lower(): value for name, value in headers}
    content_type = found.get("content-type", "")
    if "vnd.elasticsearch" in content_type:
        return content_type.replace("+x-ndjson", "+json")
    accept = found.get("accept", "")
    if "compatible-with=" in accept:
        return "application/vnd.elasticsearch+json; compatible-with=" + accept.split("compatible-with=")[1].split(";")[0]
    return "application/json"


def _auth_headers(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "es-security-runas-user")}


def _with_upstream_headers(response: Response, upstream: UpstreamResponse, keep_length: bool = False,
                           keep_encoding: bool = True) -> Response:
    """Copy the cluster's response headers (repeated ones such as ``Warning`` included) onto ``response``."""
    own = {k for k, _ in response.raw_headers}
    for name, value in upstream.headers:
        lower = name.lower()
        if lower in _HOP_BY_HOP and not (keep_length and lower == "content-length"):
            continue
        if lower == "content-encoding" and not keep_encoding:
            continue
        key = lower.encode("latin-1")
        if key in own:
            if key == b"content-length":
                continue
            response.raw_headers = [(k, v) for k, v in response.raw_headers if k != key]
            own.discard(key)
        response.raw_headers.append((key, value.encode("latin-1")))
    return response


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()
        self.breakers = BreakerRegistry(settings.breaker_failures, settings.breaker_reset_s)
        self.upstream: Upstream | None = None
        self.reranker: RerankClient | None = None
        self.store: PipelineStore | None = None

    async def start(self) -> None:
        self.upstream = Upstream(self.settings.es_url, timeout_s=self.settings.es_timeout_s)
        await self.upstream.start()
        self.reranker = RerankClient()
        self.store = PipelineStore(self.upstream, self.settings.pipeline_index, self.settings.cache_ttl_s)

    async def stop(self) -> None:
        if self.upstream:
            await self.upstream.close()
        if self.reranker:
            await self.reranker.aclose()

    # --- dispatch ------------------------------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        began = time.perf_counter()
        path = request.path_params.get("path", "")
        parts = [p for p in path.split("/") if p]
        kind = "proxy"
        try:
            if parts[:2] == ["_search", "pipeline"] and len(parts) <= 3:
                kind = "pipeline_api"
                response = await self.pipeline_api(request, parts[2] if len(parts) == 3 else None)
            elif parts[:2] == ["_searchtune", "default_pipeline"] and len(parts) == 3:
                kind = "pipeline_api"
                response = await self.default_pipeline_api(request, parts[2])
            elif parts == ["_searchtune", "health"]:
                kind = "admin"
                response = JSONResponse({"status": "ok", "es_url": self.settings.es_url,
                                         "breakers": self.breakers.states()})
            elif parts == ["metrics"] and request.method == "GET":
                kind = "admin"
                response = Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)
            elif parts[-1:] == ["_search"] and len(parts) <= 2 and request.method in ("GET", "POST"):
                index = parts[0] if len(parts) == 2 else ""
                pipeline_name = await self._pipeline_for(request, index)
                if pipeline_name:
                    kind = "search_pipeline"
                    response = await self.pipeline_search(request, index, pipeline_name)
                else:
                    response = await self.proxy(request, path)
            elif parts[-1:] == ["_msearch"] and len(parts) <= 2 and request.method in ("GET", "POST"):
                kind = "msearch"
                response = await self.msearch(request, parts[0] if len(parts) == 2 else "", path)
            else:
                response = await self.proxy(request, path)
        except StoreError as exc:
            body = exc.body if isinstance(exc.body, dict) else {"error": str(exc.body), "status": exc.status}
            response = JSONResponse(body, status_code=exc.status)
        self.metrics.requests.labels(kind, str(response.status_code)).inc()
        self.metrics.request_seconds.labels(kind).observe(time.perf_counter() - began)
        return response

    async def _pipeline_for(self, request: Request, index: str) -> str | None:
        explicit = request.query_params.get("search_pipeline")
        if explicit is not None:
            return None if explicit in ("", "_none") else explicit
        if not index:
            return None
        static = self.settings.default_pipelines.get(index)
        if static:
            return static
        return await self.store.default_cached(index, _auth_headers(request))

    # --- proxy ---------------------------------------------------------------------------------------------
    async def proxy(self, request: Request, path: str) -> Response:
        """Forward as is and answer the raw bytes (compressed or not) with the cluster's status and headers."""
        body = await request.body()
        query = request.scope.get("query_string", b"").decode("latin-1")
        if "search_pipeline" in query:  # ours (e.g. search_pipeline=_none); Elasticsearch would reject it
            query = "&".join(p for p in query.split("&") if p.split("=", 1)[0] != "search_pipeline")
        target = request.scope.get("raw_path", b"").decode("latin-1") or "/" + path
        try:
            upstream = await self.upstream.request(request.method, target + ("?" + query if query else ""),
                                                   _forward_headers(request), body)
        except UpstreamError as exc:
            return es_error(502, "gateway_exception", str(exc))
        head = request.method == "HEAD"
        if head:  # no body, but the length the cluster announced
            response = Response(status_code=upstream.status)
            response.raw_headers = [(k, v) for k, v in response.raw_headers if k != b"content-length"]
            return _with_upstream_headers(response, upstream, keep_length=True)
        return _with_upstream_headers(Response(content=upstream.body, status_code=upstream.status), upstream)

    # --- pipeline API --------------------------------------------------------------------------------------
    async def pipeline_api(self, request: Request, name: str | None) -> Response:
        auth = _auth_headers(request)
        if request.method == "GET" and name is None:
            return JSONResponse({n: redact(d) for n, d in (await self.store.list_definitions(auth)).items()})
        if name is None:
            return es_error(405, "method_not_allowed", f"{request.method} needs a pipeline name")
        if request.method in ("PUT", "POST"):
            try:
                definition = json.loads(await request.body() or b"null")
            except ValueError as exc:
                return es_error(400, "parse_exception", f"pipeline [{name}]: body is not valid JSON: {exc}")
            try:
                await self.store.put_pipeline(name, definition, auth)
            except PipelineError as exc:
                return es_error(400, "parse_exception", str(exc))
            log.info("pipeline stored", extra={"event": "pipeline_put", "pipeline": name})
            return JSONResponse({"acknowledged": True})
        if request.method == "GET":
            definition = await self.store.get_definition(name, auth)
            if definition is None:
                return es_error(404, "resource_not_found_exception", f"search pipeline [{name}] not found")
            return JSONResponse({name: redact(definition)})
        if request.method == "DELETE":
            if not await self.store.delete_pipeline(name, auth):
                return es_error(404, "resource_not_found_exception", f"search pipeline [{name}] not found")
            return JSONResponse({"acknowledged": True})
        return es_error(405, "method_not_allowed", f"{request.method} is not allowed on /_search/pipeline/{name}")

    async def default_pipeline_api(self, request: Request, index: str) -> Response:
        auth = _auth_headers(request)
        if request.method == "PUT":
            try:
                payload = json.loads(await request.body() or b"{}")
                pipeline = payload["pipeline"]
                assert isinstance(pipeline, str) and pipeline
            except (ValueError, KeyError, TypeError, AssertionError):
                return es_error(400, "parse_exception", 'expected {"pipeline": "<name>"}')
            if await self.store.get_definition(pipeline, auth) is None:
                return es_error(404, "resource_not_found_exception", f"search pipeline [{pipeline}] not found")
            await self.store.set_default(index, pipeline, auth)
            return JSONResponse({"acknowledged": True})
        if request.method == "GET":
            name = self.settings.default_pipelines.get(index) or await self.store.get_default(index, auth)
            if name is None:
                return es_error(404, "resource_not_found_exception", f"index [{index}] has no default pipeline")
            return JSONResponse({index: {"pipeline": name}})
        if request.method == "DELETE":
            found = await self.store.delete_default(index, auth)
            return JSONResponse({"acknowledged": True}) if found else es_error(
                404, "resource_not_found_exception", f"index [{index}] has no default pipeline")
        return es_error(405, "method_not_allowed", f"{request.method} not allowed")

    # --- pipeline search -----------------------------------------------------------------------------------
    async def pipeline_search(self, request: Request, index: str, name: str) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the search body must be a JSON object")
        except ValueError as exc:
            return es_error(400, "parse_exception", f"search body: {exc}")
        status, answer, upstream = await self._search(index, name, body, request.query_params.multi_items(),
                                                      _forward_headers(request, drop_encoding=True),
                                                      _auth_headers(request))
        response = Response(answer, status_code=status) if isinstance(answer, bytes) else \
            JSONResponse(answer, status_code=status)
        if upstream is None:
            response.headers["X-elastic-product"] = "Elasticsearch"
            return response
        return _with_upstream_headers(response, upstream, keep_encoding=False)

    async def _search(self, index: str, name: str | None, body: dict, params: list[tuple[str, str]],
                      headers: list[tuple[str, str]], auth: dict[str, str]
                      ) -> tuple[int, dict | bytes, UpstreamResponse | None]:
        """One search, through pipeline ``name`` when given: (status, JSON body or the cluster's raw error bytes,
        the cluster's response when there was one). Model trouble never becomes an error here."""
        began = time.perf_counter()
        pipeline = None
        if name:
            try:
                pipeline = await self.store.pipeline(name, auth)
            except PipelineError as exc:
                return 400, error_body(400, "illegal_argument_exception", f"stored {exc}"), None
            if pipeline is None:
                return 404, error_body(404, "resource_not_found_exception", f"search pipeline [{name}] not found"), None
        query = dict(params)
        start = size = window = 0
        skip = None
        upstream_body = body
        if pipeline is not None:
            try:
                upstream_body, start, size, window, skip = plan_request(body, query, pipeline)
            except ValueError as exc:
                return 400, error_body(400, "illegal_argument_exception", str(exc)), None
        consumed = CONSUMED_PARAMS if pipeline is not None else ("search_pipeline",)
        forward = urlencode([(k, v) for k, v in params if k not in consumed])
        headers = [h for h in headers if h[0].lower() != "content-type"] + [("Content-Type", _json_content_type(headers))]
        target = ("/" + quote(index, safe=",*") if index else "") + "/_search" + ("?" + forward if forward else "")
        try:
            upstream = await self.upstream.request("POST", target, headers, json.dumps(upstream_body).encode())
        except UpstreamError as exc:
            return 502, error_body(502, "gateway_exception", str(exc)), None
        es_ms = (time.perf_counter() - began) * 1000
        if upstream.status != 200 or pipeline is None:
            return upstream.status, upstream.body, upstream
        spec = pipeline.rerank
        endpoint = spec.endpoint or self.settings.models.get(spec.model_id or "")
        breaker = self.breakers.get(endpoint or "")
        outcome = await rerank_response(upstream.json(), body, query, pipeline, start, size, window, skip,
                                        rerank_call=self.reranker.rerank, endpoint=endpoint, breaker=breaker,
                                        timeout=spec.timeout_s or self.settings.timeout_s)
        if endpoint:
            self.metrics.breaker_open.labels(endpoint).set(1 if breaker.state == OPEN else 0)
        label = "reranked" if outcome.reranked else ("fallback" if outcome.fallback else "skipped")
        self.metrics.reranks.labels(name, label).inc()
        if outcome.fallback:
            self.metrics.fallbacks.labels(name, outcome.reason or "unknown").inc()
        if "rerank_ms" in outcome.timings:
            self.metrics.rerank_seconds.labels(name).observe(outcome.timings["rerank_ms"] / 1000)
        record: dict[str, Any] = {"event": "search", "index": index, "pipeline": name, "reranked": outcome.reranked,
                                  "reason": outcome.reason, "window": window, "es_ms": round(es_ms, 2),
                                  "rerank_ms": round(outcome.timings.get("rerank_ms", 0.0), 2),
                                  "total_ms": round((time.perf_counter() - began) * 1000, 2)}
        (log.warning if outcome.fallback else log.info)("pipeline search", extra=record)
        return 200, outcome.body, upstream

    # --- multi search --------------------------------------------------------------------------------------
    async def msearch(self, request: Request, path_index: str, path: str) -> Response:
        """``_msearch`` with pipelines: sub-searches that have one (URL ``search_pipeline``, a header's
        ``search_pipeline``, or their index's default) run as pipeline searches, concurrently; an ``_msearch``
        where none applies is proxied unchanged."""
        raw = await request.body()
        lines = [line for line in raw.split(b"\n") if line.strip()]
        try:
            pairs = [(json.loads(lines[i]), json.loads(lines[i + 1])) for i in range(0, len(lines) - 1, 2)]
        except ValueError:
            return await self.proxy(request, path)
        if len(lines) % 2 or not all(isinstance(h, dict) and isinstance(b, dict) for h, b in pairs):
            return await self.proxy(request, path)
        url_pipeline = request.query_params.get("search_pipeline")
        auth = _auth_headers(request)
        plan = []
        for header, body in pairs:
            index = header.get("index") or path_index
            index = ",".join(index) if isinstance(index, list) else str(index)
            name = header.get("search_pipeline", url_pipeline)
            if name is None and index and "," not in index and "*" not in index:
                name = self.settings.default_pipelines.get(index) or await self.store.default_cached(index, auth)
            plan.append((index, None if name in (None, "", "_none") else name, header, body))
        if not any(name for _, name, _, _ in plan):
            return await self.proxy(request, path)
        base_params = [(k, v) for k, v in request.query_params.multi_items()
                       if k not in ("search_pipeline", "max_concurrent_searches")]
        limit = asyncio.Semaphore(int(request.query_params.get("max_concurrent_searches", 8) or 8))
        headers = _forward_headers(request, drop_encoding=True)
        began = time.perf_counter()

        async def one(index: str, name: str | None, header: dict, body: dict) -> dict:
            params = list(base_params)
            for key, value in header.items():
                if key not in ("index", "search_pipeline"):
                    text = ",".join(map(str, value)) if isinstance(value, list) else value
                    params.append((key, str(text).lower() if isinstance(value, bool) else str(text)))
            async with limit:
                status, answer, _ = await self._search(index, name, body, params, headers, auth)
            if isinstance(answer, bytes):
                try:
                    answer = json.loads(answer)
                except ValueError:
                    answer = error_body(status, "gateway_exception", answer.decode("utf-8", "replace")[:500])
            return {**answer, "status": status}

        responses = await asyncio.gather(*(one(*item) for item in plan))
        return JSONResponse({"took": int((time.perf_counter() - began) * 1000), "responses": list(responses)},
                            headers={"X-elastic-product": "Elasticsearch"})


_SPECIAL_ROOTS = ("_search", "_msearch", "_searchtune", "metrics")


class FastProxy:
    """Raw-ASGI fast path for plain proxying (most traffic: no pipeline involved), skipping Starlette's request and
    response objects to keep the gateway's added latency low; anything special goes to the Starlette app."""

    def __init__(self, gateway: Gateway, app: Starlette) -> None:
        self.gateway = gateway
        self.app = app
        self.state = app.state

    async def _plain(self, scope: dict) -> bool:
        parts = [p for p in scope["path"].split("/") if p]
        if not parts:
            return True
        if parts[0] in _SPECIAL_ROOTS or parts[-1] == "_msearch":
            return False
        if len(parts) == 2 and parts[1] == "_search":
            if b"search_pipeline" in scope.get("query_string", b""):
                return False
            index = parts[0]
            if self.gateway.settings.default_pipelines.get(index):
                return False
            auth = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"}
            return await self.gateway.store.default_cached(index, auth) is None
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
                   if k.decode("latin-1") not in _HOP_BY_HOP]
        query = scope.get("query_string", b"")
        target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        method = scope["method"]
        try:
            upstream = await self.gateway.upstream.request(method, target, headers, b"".join(chunks))
            status, body = upstream.status, upstream.body
            out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in upstream.headers
                   if k.lower() not in _HOP_BY_HOP or (method == "HEAD" and k.lower() == "content-length")]
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


def create_app(settings: GatewaySettings) -> FastProxy:
    """The gateway's ASGI app (``.state.gateway`` is the :class:`Gateway`)."""
    gateway = Gateway(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]
    app = Starlette(routes=[Route("/{path:path}", gateway.handle, methods=methods)], lifespan=lifespan)
    app.state.gateway = gateway
    return FastProxy(gateway, app)
