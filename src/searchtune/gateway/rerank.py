"""The search handler behind ``/{index}/_search?search_pipeline=NAME``: widen, rerank, page, never fail.

Steps: read ``from``/``size`` (URL wins over body, defaults 0/10); ask the cluster for the first
``window = max(top_k, from + size)`` hits (``top_k`` absent: exactly ``from + size``, OpenSearch's semantics);
score the window (a rerank ``top_k`` narrows it, e.g. the hybrid top 30 of 100; the hits after it follow in the
previous order, scored below, as offline eval's ``with_tail`` does) with the model; sort by model score,
or by a min-max fusion with the previous stage's score when ``bm25_weight`` > 0 (BM25's, or after a ``hybrid``
processor the fused hybrid score: the weight of whatever ranked the candidates; ties keep that stage's order);
return hits ``[from, from + size)`` with ``_score`` = the model's (or fused) score and the cluster's score kept in
``fields._bm25_score``. Any model trouble (timeout, refusal, bad answer, open circuit, no query text) returns the
cluster's own order with ``"searchtune": {"reranked": false, "fallback_reason": ...}`` instead of an error.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import time
from dataclasses import dataclass, field
from typing import Any

from searchtune.gateway.pipelines import Pipeline, resolve_headers
from searchtune.gateway.query_text import document_texts, extract_query_text
from searchtune.normalize import minmax, tail_scores
from searchtune.rerank_client import RerankError

#: URL parameters the handler consumes instead of forwarding.
CONSUMED_PARAMS = ("search_pipeline", "from", "size", "_source", "_source_includes", "_source_excludes")


@dataclass
class SearchOutcome:
    status: int
    body: dict[str, Any]
    reranked: bool
    reason: str | None = None  # fallback (model trouble) or skip reason
    fallback: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def _int_param(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"[{name}] must be an integer, got {value!r}") from None
    if number < 0:
        raise ValueError(f"[{name}] must be >= 0, got {number}")
    return number


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return [str(v) for v in value]


def source_filter_spec(body: dict, params: dict[str, str]) -> tuple[bool, list[str], list[str]] | None:
    """The client's ``_source`` choice as (enabled, includes, excludes), or None when it asked for the whole source."""
    spec = body.get("_source")
    enabled, includes, excludes = True, [], []
    if isinstance(spec, bool):
        enabled = spec
    elif isinstance(spec, (str, list)):
        includes = _as_list(spec)
    elif isinstance(spec, dict):
        includes = _as_list(spec.get("includes", spec.get("include")))
        excludes = _as_list(spec.get("excludes", spec.get("exclude")))
    if "_source" in params:
        value = params["_source"]
        if value.lower() in ("false", "true"):
            enabled = value.lower() == "true"
        else:
            includes = _as_list(value)
    includes = _as_list(params.get("_source_includes")) or includes
    excludes = _as_list(params.get("_source_excludes")) or excludes
    if enabled and not includes and not excludes:
        return None
    return enabled, includes, excludes


def filter_source(source: dict, includes: list[str], excludes: list[str], prefix: str = "") -> dict:
    """Elasticsearch-style ``_source`` filtering on dotted paths with ``*`` wildcards."""
    out: dict = {}
    for key, value in source.items():
        path = prefix + key
        if any(fnmatch.fnmatchcase(path, e) for e in excludes):
            continue
        if includes and not any(fnmatch.fnmatchcase(path, i) for i in includes):
            if isinstance(value, dict) and any(i.startswith(path + ".") or i.startswith("*") for i in includes):
                sub = filter_source(value, includes, excludes, path + ".")
                if sub:
                    out[key] = sub
            continue
        out[key] = filter_source(value, [], excludes, path + ".") if isinstance(value, dict) and excludes else value
    return out


def apply_source_filter(hits: list[dict], body: dict, params: dict[str, str]) -> None:
    """The client's ``_source`` choice on the hits it gets (the gateway may have fetched more)."""
    source_spec = source_filter_spec(body, params)
    if source_spec is None:
        return
    enabled, includes, excludes = source_spec
    for hit in hits:
        if not enabled:
            hit.pop("_source", None)
        elif "_source" in hit:
            hit["_source"] = filter_source(hit["_source"], includes, excludes)


def plan_request(body: dict, params: dict[str, str], pipeline: Pipeline) -> tuple[dict, int, int, int, str | None]:
    """(body for the cluster, from, size, window, skip reason). Raises ValueError for bad from/size."""
    spec = pipeline.rerank
    start = _int_param(params.get("from", body.get("from")), "from", 0)
    size = _int_param(params.get("size", body.get("size")), "size", 10)
    window = max(spec.top_k or 0 if spec else 0, pipeline.hybrid.k if pipeline.hybrid else 0, start + size)
    upstream = copy.copy(body)
    ext = upstream.get("ext")
    if isinstance(ext, dict) and ("rerank" in ext or "searchtune" in ext):
        ext = {k: v for k, v in ext.items() if k not in ("rerank", "searchtune")}
        if ext:
            upstream["ext"] = ext
        else:
            upstream.pop("ext")
    skip = None
    sort = body.get("sort")
    if size == 0:
        skip = "size_0"
    elif "scroll" in params or body.get("search_after") is not None or body.get("pit") is not None:
        skip = "paging_unsupported"
    elif sort and _not_score_sort(sort):
        skip = "sorted_by_field"
    if skip:
        upstream["from"], upstream["size"] = start, size
    else:
        upstream["from"], upstream["size"] = 0, window
    if source_filter_spec(body, params) is not None:
        upstream["_source"] = True
    return upstream, start, size, window, skip


def _not_score_sort(sort: Any) -> bool:
    items = sort if isinstance(sort, list) else [sort]
    for item in items:
        name = item if isinstance(item, str) else next(iter(item), None) if isinstance(item, dict) else None
        if name != "_score":
            return True
    return False


def reranked_window(spec, window: int) -> int:
    """How many of the ``window`` candidates the rerank step scores: its own ``top_k`` when set, else all of them.

    Why not "at least the page": the model's cost is per document, so a client asking for 100 hits (an eval's
    Recall@100) would pay for 100 pairs where the pipeline was tuned on ``top_k`` (the quickstart's 30: about
    0.65 s instead of 0.2 s per search on 2 cores), and the ranking would differ from the offline eval of the same
    pipeline (``eval.rerank.with_tail``: the top ``top_k`` reranked, the rest below in the previous stage's order,
    both scored by ``normalize.tail_scores``). The hits after the window are paged like any other."""
    return min(window, spec.top_k) if spec.top_k else window


async def rerank_response(response: dict, body: dict, params: dict[str, str], pipeline: Pipeline, start: int,
                          size: int, window: int, skip: str | None, *, rerank_call, endpoint: str | None,
                          breaker, timeout: float) -> SearchOutcome:
    """Rerank the cluster's answer in place. ``rerank_call(endpoint, api, model, query, docs, headers, timeout)``."""
    spec = pipeline.rerank
    hits_section = response.get("hits") or {}
    hits: list[dict] = hits_section.get("hits") or []
    timings: dict[str, float] = {}
    reason: str | None = skip
    fallback = False
    reranked = False
    ranked = hits

    if reason is None and not hits:
        reason = "no_hits"
    query = None
    if reason is None:
        query = extract_query_text(body, spec.query_text_path) or params.get("q")
        if not query:
            reason, fallback = "no_query_text", True
    if reason is None and endpoint is None:
        reason, fallback = "unknown_model", True
    if reason is None and not breaker.allow():
        reason, fallback = "circuit_open", True
    window = reranked_window(spec, window)
    if reason is None:
        window_hits = hits[:window]
        texts = document_texts(window_hits, spec.fields, body, spec.separator)
        began = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                scores = await rerank_call(endpoint, spec.api, spec.model_id, query, texts,
                                           resolve_headers(spec.headers), timeout)
            breaker.record_success()
        except TimeoutError:
            breaker.record_failure()
            reason, fallback = "timeout", True
        except RerankError as exc:
            breaker.record_error(exc.reason)  # a 4xx is the request's fault, not the endpoint's
            reason, fallback = exc.reason, True
        except Exception as exc:  # noqa: BLE001 - a search must never fail because of the model
            breaker.record_failure()
            reason, fallback = f"error_{type(exc).__name__}", True
        timings["rerank_ms"] = (time.perf_counter() - began) * 1000
        if reason is None:
            previous = [float(h.get("_score") or 0.0) for h in window_hits]  # BM25's, or hybrid's fused score
            final = [float(s) for s in scores]
            if spec.bm25_weight > 0:
                w = spec.bm25_weight
                final = [(1 - w) * m + w * b for m, b in zip(minmax(final), minmax(previous))]
            for hit, b, model_score, score in zip(window_hits, previous, scores, final):
                fields = hit.setdefault("fields", {})
                if "_knn_score" in fields:  # hybrid candidates: keep their BM25/kNN explain, add the fused score
                    fields["_hybrid_score"] = [b]
                else:
                    fields["_bm25_score"] = [b]
                if spec.bm25_weight > 0:
                    fields["_model_score"] = [model_score]
                hit["_score"] = score
            # equal scores keep the previous stage's order (eval.rerank.with_tail breaks ties the same way)
            order = sorted(range(len(window_hits)), key=lambda i: (-final[i], i))
            tail = hits[window:]
            for hit, score in zip(tail, tail_scores(min(final, default=0.0), len(tail))):
                previous_score = hit.get("_score")
                fields = hit.setdefault("fields", {})
                fields.setdefault("_hybrid_score" if "_knn_score" in fields else "_bm25_score", [previous_score])
                hit["_score"] = score
            ranked = [window_hits[i] for i in order] + tail
            hits_section["max_score"] = max(final) if final else None
            reranked = True
            if isinstance(response.get("took"), int):
                response["took"] += int(round(timings["rerank_ms"]))

    if skip is None:  # the cluster returned the widened window: page it for the client
        ranked = ranked[start:start + size]
    apply_source_filter(ranked, body, params)
    if "hits" in response:
        hits_section["hits"] = ranked
    info: dict[str, Any] = {"pipeline": pipeline.name, "reranked": reranked, "window": min(window, len(hits))}
    if spec.model_id:
        info["model_id"] = spec.model_id
    if "rerank_ms" in timings:
        info["rerank_ms"] = round(timings["rerank_ms"], 2)
    if reason is not None:
        info["fallback_reason" if fallback else "skipped_reason"] = reason
    response["searchtune"] = info
    return SearchOutcome(200, response, reranked, reason, fallback, timings)
