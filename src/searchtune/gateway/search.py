"""``GET|POST [/{index}]/_search``: through a pipeline (``?search_pipeline=NAME`` or the index's default) the
search is widened, reranked by the model endpoint and answered in the normal response shape (rerank.py holds the
steps); without one it is proxied unchanged. Model trouble never becomes an error, only a fallback to the cluster's
order."""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from searchtune.gateway import native_pipelines
from searchtune.gateway.breaker import OPEN
from searchtune.gateway.pipelines import PipelineError
from searchtune.gateway.proxy import error_body, es_error, forward_headers, json_content_type, proxy, with_upstream_headers
from searchtune.gateway.rerank import CONSUMED_PARAMS, plan_request, rerank_response
from searchtune.gateway.service import Gateway, auth_headers
from searchtune.gateway.upstream import UpstreamError, UpstreamResponse

log = logging.getLogger("searchtune.gateway")


async def search_endpoint(gateway: Gateway, request: Request) -> Response:
    """The route: a pipeline search when one applies (metrics kind ``search_pipeline``), else plain proxying."""
    index = request.path_params.get("index", "")
    name = await gateway.pipeline_for(request, index)
    if not name:
        return await proxy(gateway, request)
    if await native_pipelines.is_native(gateway, request, name):
        return await proxy(gateway, request, search_pipeline=name)
    request.state.kind = "search_pipeline"
    return await pipeline_search(gateway, request, index, name)


async def pipeline_search(gateway: Gateway, request: Request, index: str, name: str) -> Response:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
        if not isinstance(body, dict):
            raise ValueError("the search body must be a JSON object")
    except ValueError as exc:
        return es_error(400, "parse_exception", f"search body: {exc}")
    status, answer, upstream = await run_search(gateway, index, name, body, request.query_params.multi_items(),
                                                forward_headers(request, drop_encoding=True), auth_headers(request))
    response = Response(answer, status_code=status) if isinstance(answer, bytes) else \
        JSONResponse(answer, status_code=status)
    if upstream is None:
        response.headers["X-elastic-product"] = "Elasticsearch"
        return response
    return with_upstream_headers(response, upstream, keep_encoding=False)


async def run_search(gateway: Gateway, index: str, name: str | None, body: dict, params: list[tuple[str, str]],
                     headers: list[tuple[str, str]], auth: dict[str, str]
                     ) -> tuple[int, dict | bytes, UpstreamResponse | None]:
    """One search, through pipeline ``name`` when given: (status, JSON body or the cluster's raw error bytes,
    the cluster's response when there was one). Model trouble never becomes an error here."""
    began = time.perf_counter()
    pipeline = None
    if name:
        try:
            pipeline = await gateway.store.pipeline(name, auth)
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
    consumed = CONSUMED_PARAMS if pipeline is not None else ()  # a plain one's search_pipeline is the cluster's
    forward = urlencode([(k, v) for k, v in params if k not in consumed])
    headers = [h for h in headers if h[0].lower() != "content-type"] + [("Content-Type", json_content_type(headers))]
    target = ("/" + quote(index, safe=",*") if index else "") + "/_search" + ("?" + forward if forward else "")
    try:
        upstream = await gateway.upstream.request("POST", target, headers, json.dumps(upstream_body).encode())
    except UpstreamError as exc:
        return 502, error_body(502, "gateway_exception", str(exc)), None
    es_ms = (time.perf_counter() - began) * 1000
    if upstream.status != 200 or pipeline is None:
        return upstream.status, upstream.body, upstream
    spec = pipeline.rerank
    endpoint = spec.endpoint or gateway.settings.models.get(spec.model_id or "")
    breaker = gateway.breakers.get(endpoint or "")
    outcome = await rerank_response(upstream.json(), body, query, pipeline, start, size, window, skip,
                                    rerank_call=gateway.reranker.rerank, endpoint=endpoint, breaker=breaker,
                                    timeout=spec.timeout_s or gateway.settings.timeout_s)
    if endpoint:
        gateway.metrics.breaker_open.labels(endpoint).set(1 if breaker.state == OPEN else 0)
    label = "reranked" if outcome.reranked else ("fallback" if outcome.fallback else "skipped")
    gateway.metrics.reranks.labels(name, label).inc()
    if outcome.fallback:
        gateway.metrics.fallbacks.labels(name, outcome.reason or "unknown").inc()
    if "rerank_ms" in outcome.timings:
        gateway.metrics.rerank_seconds.labels(name).observe(outcome.timings["rerank_ms"] / 1000)
    record: dict[str, Any] = {"event": "search", "index": index, "pipeline": name, "reranked": outcome.reranked,
                              "reason": outcome.reason, "window": window, "es_ms": round(es_ms, 2),
                              "rerank_ms": round(outcome.timings.get("rerank_ms", 0.0), 2),
                              "total_ms": round((time.perf_counter() - began) * 1000, 2)}
    (log.warning if outcome.fallback else log.info)("pipeline search", extra=record)
    return 200, outcome.body, upstream
