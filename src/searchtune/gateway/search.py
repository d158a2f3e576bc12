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
    if pipeline is not None and pipeline.hybrid is not None:
        from searchtune.gateway.hybrid_search import hybrid_search

        return await hybrid_search(gateway, index, pipeline, body, params, headers, auth, began)
    start = size = window = 0
    skip = None
    upstream_body = body
    if pipeline is not None:
        try:
            upstream_body, start, size, window, skip = plan_request(body, query, pipeline)
        except ValueError as exc:
            return 400, error_body(400, "illegal_argument_exception", str(exc)), None
    consumed = CONSUMED_PARAMS if pipeline is not None else ()  # a plain one's search_pipeline is the cluster's
    try:
        upstream = await cluster_search(gateway, index, upstream_body, params, headers, consumed)
    except UpstreamError as exc:
        return 502, error_body(502, "gateway_exception", str(exc)), None
    es_ms = (time.perf_counter() - began) * 1000
    if upstream.status != 200 or pipeline is None:
        return upstream.status, upstream.body, upstream
    try:
        answer = upstream.json()
    except ValueError:
        return 502, error_body(502, "gateway_exception", f"the cluster answered HTTP 200 with a body that is not "
                                                         f"JSON: {upstream.body[:200]!r}"), None
    outcome = await rerank_step(gateway, pipeline, answer, body, query, start, size, window, skip)
    log_search(index, pipeline.name, outcome.reranked, outcome.reason, outcome.fallback, window, began,
               es_ms=es_ms, rerank_ms=outcome.timings.get("rerank_ms", 0.0))
    return 200, outcome.body, upstream


async def cluster_search(gateway: Gateway, index: str, body: dict, params: list[tuple[str, str]],
                         headers: list[tuple[str, str]], consumed: tuple[str, ...] = CONSUMED_PARAMS
                         ) -> UpstreamResponse:
    """``POST [/{index}]/_search`` on the cluster with the client's other URL parameters and headers."""
    forward = urlencode([(k, v) for k, v in params if k not in consumed])
    headers = [h for h in headers if h[0].lower() != "content-type"] + [("Content-Type", json_content_type(headers))]
    target = ("/" + quote(index, safe=",*") if index else "") + "/_search" + ("?" + forward if forward else "")
    return await gateway.upstream.request("POST", target, headers, json.dumps(body).encode())


async def rerank_step(gateway: Gateway, pipeline, response: dict, body: dict, query: dict[str, str], start: int,
                      size: int, window: int, skip: str | None):
    """The pipeline's rerank processor over ``response`` (the cluster's answer, or hybrid's fused one), with its
    (pipeline, endpoint) breaker and metrics; see rerank.rerank_response."""
    spec = pipeline.rerank
    endpoint = spec.endpoint or gateway.settings.models.get(spec.model_id or "")
    breaker = gateway.breakers.get(pipeline.name, endpoint or "")
    budget = spec.timeout_s or gateway.settings.timeout_s
    outcome = await rerank_response(response, body, query, pipeline, start, size, window, skip,
                                    rerank_call=gateway.calls.rerank, endpoint=endpoint, breaker=breaker,
                                    timeout=budget)
    gateway.calls.settle(pipeline, endpoint, breaker, budget, outcome.body["searchtune"])
    label = "reranked" if outcome.reranked else ("fallback" if outcome.fallback else "skipped")
    gateway.metrics.reranks.labels(pipeline.name, label).inc()
    if outcome.fallback:
        gateway.metrics.fallbacks.labels(pipeline.name, outcome.reason or "unknown").inc()
    if "rerank_ms" in outcome.timings:
        gateway.metrics.rerank_seconds.labels(pipeline.name).observe(outcome.timings["rerank_ms"] / 1000)
    return outcome


def log_search(index: str, pipeline: str, reranked: bool, reason: str | None, fallback: bool, window: int,
               began: float, **timings_ms: float) -> None:
    """One JSON log line per pipeline search (warning level on fallback)."""
    record: dict[str, Any] = {"event": "search", "index": index, "pipeline": pipeline, "reranked": reranked,
                              "reason": reason, "window": window,
                              **{k: round(v, 2) for k, v in timings_ms.items()},
                              "total_ms": round((time.perf_counter() - began) * 1000, 2)}
    (log.warning if fallback else log.info)("pipeline search", extra=record)
