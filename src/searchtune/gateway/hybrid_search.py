"""A search through a pipeline with a ``hybrid`` processor: BM25 and kNN from one application query, fused here.

1. The query text is taken from the unchanged search body (the same rule as the rerank step) and embedded once
   through the pipeline's endpoint, while the cluster runs the BM25 side (the application's query, widened to
   ``window = max(k, from + size, top_k of a following rerank)``).
2. Before trusting a kNN search the vectors' model (the index metadata) is compared with the endpoint's model
   (its fingerprint header; else the pipeline's ``model_id``): a mismatch is refused, never guessed.
3. The kNN side carries the bool query's filters; both sides are fused (linear min-max with a weight, or RRF), and
   each hit keeps ``fields._bm25_score`` / ``fields._knn_score``.
4. A following ``neural_rerank`` reranks the fused top ``top_k`` (the rest of the page follows in fused order);
   otherwise the page ``[from, from + size)`` is returned. Both sides fetch ids and scores only; the hits that
   leave the gateway (or go to the reranker) get their ``_source`` from one ``_mget`` afterwards (hydrate.py).

Any trouble on the model side (endpoint down or slow, open circuit, no vectors, model mismatch, a failed kNN search)
gives BM25's order with ``"searchtune": {"hybrid": false, "fallback_reason": ...}`` and status 200.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from searchtune.gateway.embed_client import QueryVector, embed_query
from searchtune.gateway.hydrate import hydrate_sources, source_request
from searchtune.gateway.pipelines import resolve_headers
from searchtune.gateway.proxy import error_body
from searchtune.gateway.query_text import extract_query_text
from searchtune.gateway.rerank import apply_source_filter, plan_request, reranked_window
from searchtune.rerank_client import RerankError
from searchtune.gateway.search import cluster_search, log_search, rerank_step
from searchtune.gateway.upstream import UpstreamError
from searchtune.vectors.fusion import fuse
from searchtune.vectors.identity import ModelIdentity
from searchtune.vectors.knn import es_knn_body, hits_ranked, opensearch_knn_body
from searchtune.vectors.mapping import meta_identity


class Fallback(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


async def hybrid_search(gateway, index: str, pipeline, body: dict, params: list[tuple[str, str]],
                        headers: list[tuple[str, str]], auth: dict[str, str], began: float):
    query = dict(params)
    spec = pipeline.hybrid
    try:
        bm25_body, start, size, window, skip = plan_request(body, query, pipeline)
    except ValueError as exc:
        return 400, error_body(400, "illegal_argument_exception", str(exc)), None
    vectors = await gateway.vectors.get(index, auth) if index else None
    field = spec.vector_field or (vectors.meta["field"] if vectors else None)
    deferred = not skip and field is not None  # sources fetched after fusion, for the hits that leave (hydrate.py)
    if deferred:
        bm25_body["_source"] = False
    text = extract_query_text(body, spec.query_text_path) or query.get("q")
    breaker = gateway.breakers.get(pipeline.name, spec.endpoint)
    allowed = gateway.endpoints.allows(spec.endpoint)  # checked at PUT too; a pipeline written around us is not called
    embedding = None
    if not skip and text and allowed and breaker.allow():
        embedding = asyncio.create_task(_timed(embed_query(
            gateway.reranker.http, spec.endpoint, spec.api, spec.model_id, text, resolve_headers(spec.headers),
            spec.timeout_s or gateway.settings.timeout_s)))
    try:
        upstream = await cluster_search(gateway, index, bm25_body, params, headers)
    except UpstreamError as exc:
        if embedding:
            embedding.cancel()
        return 502, error_body(502, "gateway_exception", str(exc)), None
    es_ms = (time.perf_counter() - began) * 1000
    if upstream.status != 200:
        if embedding:
            embedding.cancel()
        return upstream.status, upstream.body, upstream
    try:
        response = upstream.json()
    except ValueError:
        if embedding:
            embedding.cancel()
        return 502, error_body(502, "gateway_exception", f"the cluster answered HTTP 200 with a body that is not "
                                                         f"JSON: {upstream.body[:200]!r}"), None
    timings: dict[str, float] = {"es_ms": es_ms}
    info: dict[str, Any] = {"pipeline": pipeline.name, "hybrid": False, "window": window,
                            "fusion": spec.fusion.describe()}
    if spec.model_id:
        info["model_id"] = spec.model_id
    try:
        if skip:
            raise Fallback(skip)
        if not text:
            raise Fallback("no_query_text")
        if not allowed:
            raise Fallback("endpoint_not_allowed")
        if embedding is None:
            raise Fallback("circuit_open")
        qv = await _embedding(embedding, breaker, timings)
        vectors = await _checked_vectors(gateway, index, auth, vectors, qv, spec, field)
        field = field or vectors.meta["field"]
        knn = await _knn(gateway, index, body, params, headers, auth, qv, spec, field, timings)
        if any(hit.get("_index") not in (None, vectors.physical) for hit in knn.get("hits", {}).get("hits", [])):
            # the alias moved while we searched: check the model of the vectors that answered
            await _checked_vectors(gateway, index, auth, None, qv, spec, field, fresh=True)
        response = _fused(response, knn, spec, window)
        info["hybrid"] = True
        info["knn_hits"] = len(knn.get("hits", {}).get("hits", []))
    except Fallback as fb:
        skipped = fb.reason == skip
        info["skipped_reason" if skipped else "fallback_reason"] = fb.reason
        if fb.detail:
            info["fallback_detail"] = fb.detail
        if not skipped:
            gateway.metrics.fallbacks.labels(pipeline.name, fb.reason).inc()
    rerank_window = reranked_window(pipeline.rerank, window) if pipeline.rerank is not None else window
    if deferred:
        leaving = response.get("hits", {}).get("hits", [])
        # with a rerank step: its window, and the page's hits after it (the tail keeps the fused order)
        leaving = (leaving[:max(rerank_window, start + size)] if pipeline.rerank is not None
                   else leaving[start:start + size])
        source = {"excludes": [field]} if pipeline.rerank is not None else source_request(body, query, field)
        try:
            began_fetch = time.perf_counter()
            await hydrate_sources(gateway, leaving, source, headers)
            timings["source_ms"] = (time.perf_counter() - began_fetch) * 1000
        except UpstreamError as exc:
            return 502, error_body(502, "gateway_exception", str(exc)), None
    info.update({k: round(v, 2) for k, v in timings.items() if k != "es_ms"})
    if pipeline.rerank is not None:
        outcome = await rerank_step(gateway, pipeline, response, body, query, start, size, rerank_window, skip)
        reranker_info = outcome.body.get("searchtune", {})
        outcome.body["searchtune"] = {**reranker_info, **info, "pipeline": pipeline.name,
                                      "rerank_window": reranker_info.get("window")}
        answer, reranked = outcome.body, outcome.reranked
        timings["rerank_ms"] = outcome.timings.get("rerank_ms", 0.0)
    else:
        answer, reranked = _page(response, body, query, start, size, skip), False
        answer["searchtune"] = {**info, "reranked": False}
    if isinstance(answer.get("took"), int):  # the client waited for the whole pipeline, not one cluster search
        answer["took"] = max(answer["took"], int((time.perf_counter() - began) * 1000))
    log_search(index, pipeline.name, reranked, info.get("fallback_reason"), "fallback_reason" in info, window,
               began, **timings)
    return 200, answer, upstream


async def _timed(call):
    started = time.perf_counter()
    result = await call
    return result, (time.perf_counter() - started) * 1000


async def _embedding(task: asyncio.Task, breaker, timings: dict[str, float]) -> QueryVector:
    try:
        qv, timings["embed_ms"] = await task
    except RerankError as exc:
        breaker.record_failure()
        raise Fallback(exc.reason, exc.detail[:200]) from None
    except Exception as exc:  # noqa: BLE001 - a search must never fail because of the model
        breaker.record_failure()
        raise Fallback(f"error_{type(exc).__name__}") from None
    breaker.record_success()
    return qv


async def _checked_vectors(gateway, index, auth, vectors, qv: QueryVector, spec, field, fresh: bool = False):
    """The index's vectors, when they come from the model that embedded the query; else a fallback."""
    if vectors is None or fresh:
        vectors = await gateway.vectors.get(index, auth, fresh=True) if index else None
    if vectors is None:
        raise Fallback("no_vectors", f"'{index}' records no vectors (build them with `searchtune index --vectors`)")
    indexed = meta_identity(vectors.meta)
    if indexed is None:
        raise Fallback("model_mismatch", "the index metadata names no model")
    if int(vectors.meta.get("dims") or 0) != len(qv.vector):
        raise Fallback("model_mismatch", f"query vector has {len(qv.vector)} dims, the index {vectors.meta.get('dims')}")
    if qv.fingerprint and indexed.fingerprint:
        ok, why = indexed.matches(ModelIdentity(id=spec.model_id or qv.model or spec.endpoint,
                                                fingerprint=qv.fingerprint))
    elif spec.model_id:
        ok, why = indexed.matches(ModelIdentity(id=spec.model_id))
    else:
        ok, why = False, "the endpoint reports no model fingerprint and the pipeline names no model_id"
    if not ok:
        raise Fallback("model_mismatch", why)
    return vectors


async def _knn(gateway, index, body, params, headers, auth, qv: QueryVector, spec, field, timings):
    started = time.perf_counter()
    if await gateway.vectors.product(auth) == "opensearch":
        knn_body = opensearch_knn_body(body, qv.vector, field, spec.k)
    else:
        knn_body = es_knn_body(body, qv.vector, field, spec.k, spec.num_candidates)
    knn_body["_source"] = False  # ids and scores are all the fusion needs (hydrate.py)
    try:
        upstream = await cluster_search(gateway, index, knn_body, params, headers)
    except UpstreamError as exc:
        raise Fallback("knn_error", str(exc)[:200]) from None
    timings["knn_ms"] = (time.perf_counter() - started) * 1000
    if upstream.status != 200:
        raise Fallback(f"knn_http_{upstream.status}", upstream.body[:200].decode("utf-8", "replace"))
    return upstream.json()


def _fused(response: dict, knn: dict, spec, window: int) -> dict:
    """BM25's answer with its hits replaced by the fused ranking (explain fields on every hit)."""
    bm25_hits = response.get("hits", {}).get("hits", [])
    by_id = {hit["_id"]: hit for hit in knn.get("hits", {}).get("hits", [])}
    by_id.update({hit["_id"]: hit for hit in bm25_hits})
    hits = []
    for item in fuse(hits_ranked(response), hits_ranked(knn), spec.fusion)[:max(window, spec.k)]:
        hit = dict(by_id[item.id])
        fields = dict(hit.get("fields") or {})
        fields["_bm25_score"] = [item.bm25_score]
        fields["_knn_score"] = [item.knn_score]
        hit["fields"], hit["_score"] = fields, item.score
        hits.append(hit)
    section = response.setdefault("hits", {})
    section["hits"] = hits
    section["max_score"] = hits[0]["_score"] if hits else None
    return response


def _page(response: dict, body: dict, query: dict[str, str], start: int, size: int, skip: str | None) -> dict:
    """Hits ``[from, from + size)`` with the client's ``_source`` choice applied (no rerank step follows)."""
    section = response.get("hits") or {}
    hits = section.get("hits") or []
    if skip is None:
        hits = hits[start:start + size]
    apply_source_filter(hits, body, query)
    if "hits" in response:
        section["hits"] = hits
    return response
