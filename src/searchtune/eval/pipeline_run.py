"""Evaluate a search pipeline end to end: send each query as an ordinary search to
``{url}/{index}/_search?search_pipeline=NAME`` (our gateway in front of Elasticsearch or OpenSearch, or an
OpenSearch cluster with its own rerank pipeline) and turn the hits into a run. This measures exactly what an
application sees, fallbacks included. One search per query: OpenSearch 2.19's ``_msearch`` takes no pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from searchtune.data.records import Query
from searchtune.search.retrieval import Run, bm25_query, parse_fields


@dataclass
class PipelineRun:
    run: Run
    latencies_ms: list[float] = field(default_factory=list)
    fallbacks: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)


def search_through_pipeline(url: str, index: str, pipeline: str | None, queries: Mapping[str, Query],
                            fields: str | list[str] = "title,text", size: int = 100, timeout: float = 120.0,
                            with_source: bool = False, rank_scores: bool = True,
                            on_progress: Callable[[int], None] | None = None) -> PipelineRun:
    """One search per query, sequentially (latencies are per request).

    The query text also travels in ``ext.rerank.query_context`` (what OpenSearch's rerank processor reads; our
    gateway reads it too). With ``rank_scores`` the run scores encode the returned order, so that ties in
    ``_score`` cannot reorder what the application saw; otherwise the hits' ``_score`` values are kept.
    ``track_total_hits`` is left at its default: neural-search 2.19.1's rerank processor fails without totals.
    """
    field_list = parse_fields(fields) if isinstance(fields, str) else list(fields)
    params = {"search_pipeline": pipeline} if pipeline else {}
    result = PipelineRun(run={})
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout) as client:
        for qid, query in queries.items():
            body: dict = {"query": bm25_query(query.text, field_list), "size": size}
            if pipeline:  # OpenSearch's rerank processor reads document fields from _source: keep it
                body["ext"] = {"rerank": {"query_context": {"query_text": query.text}}}
            elif not with_source:
                body["_source"] = False
            start = time.perf_counter()
            response = client.post(f"/{index}/_search", params=params, json=body)
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
            result.run[qid] = {}
            if response.status_code != 200:
                result.errors[qid] = f"HTTP {response.status_code}: {response.text[:300]}"
            else:
                payload = response.json()
                meta = payload.get("searchtune") or {}
                if meta.get("fallback_reason"):  # skips (e.g. no hits) are not model trouble
                    result.fallbacks += 1
                hits = payload["hits"]["hits"]
                for rank, hit in enumerate(hits):
                    result.run[qid][hit["_id"]] = float(len(hits) - rank) if rank_scores else float(hit["_score"])
                    if with_source:
                        result.sources[hit["_id"]] = hit.get("_source") or {}
            if on_progress:
                on_progress(1)
    return result
