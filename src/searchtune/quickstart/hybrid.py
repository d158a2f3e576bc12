"""The quickstart's hybrid stages: the trained embedder's vectors into the index, and the ``hybrid`` pipeline.

A fine-tuned embedder is deployed as hybrid retrieval rather than as a reranker of BM25's top 100: the documents are
embedded once, at index time (beside the live index, then the alias moves), and a search embeds only its query.
That finds documents BM25 missed (a reranker cannot) and costs milliseconds instead of seconds per search.
"""

from __future__ import annotations

from searchtune.vectors.fusion import DEFAULT_WEIGHT


def index_and_tune(client, index: str, model_ref: str, split, record: dict, fields: str, max_length: int,
                   say, store: str) -> tuple[dict, float]:
    """Re-embed ``index`` with ``model_ref`` (the registered version, beside the live index, then the alias moves),
    then tune the fusion weight on the training run's dev queries with the index's own kNN search.

    ``model_ref`` is resolved in ``store``, the run's registry (never the user's ``SEARCHTUNE_STORE``). Returns the
    build's figures (with the tuning) and the weight; without dev queries the weight ``train embed`` stored
    (training.json ``hybrid``) or the neutral default is used."""
    from searchtune.eval.hybrid import es_knn_run, tune_hybrid_weight
    from searchtune.search.retrieval import bm25_search, parse_fields
    from searchtune.vectors.build import update_vectors
    from searchtune.vectors.embedders import open_embedder

    embedder = open_embedder(model_ref, max_length=max_length, store=store)
    try:
        result = update_vectors(client, index, embedder)
        say(f"indexed {result.count} vectors of {result.spec.model.id} into {result.index} "
            f"({result.docs_per_second:.1f} docs/s); '{index}' now searches it")
        info = {"index": result.index, "docs": result.count, "seconds": round(result.seconds, 1),
                "docs_per_second": round(result.docs_per_second, 2), "model": result.spec.model.to_dict()}
        data = record.get("data") or {}
        dev_split, dev_ids = data.get("dev_split"), data.get("dev_queries") or []
        queries = {q: split.queries[q] for q in dev_ids if q in split.queries}
        if not queries or dev_split not in split.qrels:
            return info, _card_weight(record)
        qrels = {q: split.qrels[dev_split][q] for q in queries if q in split.qrels[dev_split]}
        bm25, _ = bm25_search(client, index, queries, fields=parse_fields(fields), top_k=100)
        knn = es_knn_run(client, index, result.spec.field, embedder, queries)
        choice = tune_hybrid_weight(qrels, bm25, knn.run)
    finally:
        embedder.close()
    info["tuned"] = {"weight": choice.weight, "dev_ndcg@10": round(choice.value, 4), "dev_queries": len(queries)}
    say(f"hybrid weight {choice.weight:.2f} tuned on {len(queries)} dev queries (dev NDCG@10 {choice.value:.4f})")
    return info, choice.weight


def _card_weight(record: dict) -> float:
    """The kNN weight ``train embed`` tuned on dev (training.json ``hybrid``), else the neutral default."""
    weight = (record.get("hybrid") or {}).get("weight")
    return float(weight) if weight is not None else DEFAULT_WEIGHT


def hybrid_pipeline(model_id: str, endpoint: str, weight: float) -> dict:
    """``bailian-rerank`` as a hybrid pipeline: the served model embeds the query, the gateway fuses."""
    return {"description": "Hybrid retrieval with the fine-tuned searchtune embedder (kNN + BM25, fused)",
            "request_processors": [{"hybrid": {
                "model_id": model_id, "endpoint": f"{endpoint}/v1/embeddings", "k": 100, "num_candidates": 200,
                "fusion": {"method": "linear", "weight": round(weight, 4)}, "timeout_ms": 2000,
                "headers": {"Authorization": "Bearer $SEARCHTUNE_SECRET_BAILIAN_API_KEY"}}}]}
