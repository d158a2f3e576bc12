"""Hybrid retrieval in-process: kNN runs (exact, or through the index's HNSW vectors) fused with BM25 runs.

Used to measure and tune before deploying: ``searchtune eval --hybrid MODEL`` and the dev-set weight that
``train embed`` stores with the model. Exact kNN embeds the whole corpus and takes a matrix product (the ceiling
HNSW approximates); ``es`` kNN runs the same top-level ``knn`` search the gateway sends, one query at a time, and
so also measures per-search latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from searchtune.data.records import Document, Qrels, Query
from searchtune.eval.metrics import evaluate
from searchtune.eval.rerank import DEFAULT_FUSION_GRID, FusionChoice
from searchtune.vectors.embedders import Embedder
from searchtune.vectors.fusion import Fusion, fuse_runs
from searchtune.vectors.knn import es_knn_body, hits_ranked, opensearch_knn_body

Run = dict[str, dict[str, float]]


@dataclass
class KnnRun:
    run: Run
    latencies_ms: list[float] = field(default_factory=list)   # per search (es), empty for exact


def exact_knn_run(embedder: Embedder, corpus: Mapping[str, Document], queries: Mapping[str, Query], k: int = 100,
                  doc_vectors: np.ndarray | None = None, chunk: int = 1024,
                  on_progress: Callable[[int], None] | None = None) -> tuple[KnnRun, np.ndarray]:
    """Top-``k`` cosine neighbours of each query over the whole corpus; returns the run and the corpus matrix (pass
    it back as ``doc_vectors`` to score other queries with the same model without embedding the corpus again).

    The corpus goes to the embedder in chunks of ``chunk`` documents only when ``on_progress`` watches; otherwise
    in one call, so an embedder that sorts its inputs by length packs the whole corpus (SciFact on the serving
    backend: 93 s in one call against 104 s in chunks of 256)."""
    ids = list(corpus)
    if doc_vectors is None:
        chunk = chunk if on_progress else max(1, len(ids))
        parts = []
        for start in range(0, len(ids), chunk):
            parts.append(embedder.embed([corpus[d].full_text for d in ids[start:start + chunk]]))
            if on_progress:
                on_progress(len(parts[-1]))
        doc_vectors = np.concatenate(parts) if parts else np.zeros((0, embedder.dims), dtype=np.float32)
    qids = list(queries)
    query_vectors = embedder.embed([queries[q].text for q in qids])
    scores = query_vectors @ doc_vectors.T
    run: Run = {}
    top = min(k, len(ids))
    for row, qid in enumerate(qids):
        best = np.argpartition(-scores[row], top - 1)[:top] if top else []
        run[qid] = {ids[i]: float(scores[row, i]) for i in best}
    return KnnRun(run=run), doc_vectors


def es_knn_run(client, index: str, field: str, embedder: Embedder, queries: Mapping[str, Query], k: int = 100,
               num_candidates: int = 200, on_progress: Callable[[int], None] | None = None) -> KnnRun:
    """kNN through the index, one query at a time: embed the query, search, time both (what a search costs)."""
    result = KnnRun(run={})
    for qid, query in queries.items():
        started = time.perf_counter()
        vector = embedder.embed([query.text])[0].tolist()
        if _is_opensearch(client):
            response = client.search(index=index, body=opensearch_knn_body({"_source": False}, vector, field, k))
        else:
            response = client.search(index=index, **es_knn_body({"_source": False}, vector, field, k, num_candidates))
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.run[qid] = dict(hits_ranked(dict(response)))
        if on_progress:
            on_progress(1)
    return result


def hybrid_run(bm25: Run, knn: Run, fusion: Fusion, depth: int = 100) -> Run:
    return fuse_runs(bm25, knn, fusion, depth=depth)


def tune_hybrid_weight(qrels: Qrels, bm25: Run, knn: Run, metric: str = "NDCG@10",
                       grid: Sequence[float] = DEFAULT_FUSION_GRID, depth: int = 100) -> FusionChoice:
    """The kNN weight in ``grid`` that maximises ``metric`` of linear fusion on ``qrels`` (ties: smaller weight)."""
    curve = {w: evaluate(qrels, hybrid_run(bm25, knn, Fusion("linear", weight=w), depth)).aggregate[metric]
             for w in grid}
    best = max(curve, key=lambda w: (curve[w], -w))
    return FusionChoice(weight=best, value=curve[best], metric=metric, curve=curve)


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float] | None:
    """p50/p95/p99/mean/max of per-search latencies (nearest-rank percentiles), ``None`` when there are none."""
    if not latencies_ms:
        return None
    values = np.asarray(sorted(latencies_ms), dtype=float)

    def pct(p: float) -> float:
        return round(float(values[min(len(values) - 1, max(0, int(np.ceil(p / 100 * len(values))) - 1))]), 2)

    return {"p50": pct(50), "p95": pct(95), "p99": pct(99), "mean": round(float(values.mean()), 2),
            "max": round(float(values[-1]), 2), "count": int(len(values))}


def _is_opensearch(client) -> bool:
    return type(client).__module__.startswith("opensearchpy")
