"""Evaluate a search pipeline end to end: send each query as an ordinary search to
``{url}/{index}/_search?search_pipeline=NAME`` (our gateway, or an OpenSearch cluster with a rerank pipeline) and
turn the hits into a run. This measures exactly what an application sees, fallbacks included."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from searchtune.data.records import Query
from searchtune.search.retrieval import Run, bm25_query, parse_fields


@dataclass
class PipelineRun:
    run: Run
    latencies_ms: list[float] = field(default_factory=list)
    fallbacks: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def search_through_pipeline(url: str, index: str, pipeline: str | None, queries: Mapping[str, Query],
                            fields: str | list[str] = "title,text", size: int = 100, timeout: float = 120.0,
                            with_query_text_ext: bool = True,
                            on_progress: Callable[[int], None] | None = None) -> PipelineRun:
    """One search per query, sequentially (latencies are per request). Hits' ``_score`` is what the pipeline set."""
    field_list = parse_fields(fields) if isinstance(fields, str) else list(fields)
    params = {"search_pipeline": pipeline} if pipeline else {}
    result = PipelineRun(run={})
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout) as client:
        for qid, query in queries.items():
            body: dict = {"query": bm25_query(query.text, field_list), "size": size, "_source": False}
            if with_query_text_ext:
                body["ext"] = {"rerank": {"query_context": {"query_text": query.text}}}
            start = time.perf_counter()
            response = client.post(f"/{index}/_search", params=params, json=body)
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                result.errors[qid] = f"HTTP {response.status_code}: {response.text[:300]}"
                result.run[qid] = {}
            else:
                payload = response.json()
                meta = payload.get("searchtune") or {}
                if meta and not meta.get("reranked", True):
                    result.fallbacks += 1
                hits = payload["hits"]["hits"]
                # rank order is authoritative; scores may tie, so encode the rank into the run's scores
                result.run[qid] = {hit["_id"]: float(len(hits) - i) for i, hit in enumerate(hits)}
            if on_progress:
                on_progress(1)
    return result
