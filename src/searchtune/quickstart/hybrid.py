"""The quickstart's deployment stages: the chosen embedder's vectors into the index, and the pipeline body.

A fine-tuned embedder is deployed as hybrid retrieval rather than as a reranker of BM25's top 100: the documents are
embedded once, at index time (beside the live index, then the alias moves), and a search embeds only its query.
That finds documents BM25 missed (a reranker cannot) and costs milliseconds instead of seconds per search.
"""

from __future__ import annotations


def index_vectors(client, index: str, embedder, say) -> dict:
    """Re-embed ``index`` with the chosen stack's embedder (beside the live index, then the alias moves).

    The embedder remembers the corpus vectors the choice computed (vectors/embedders.RememberingEmbedder), so
    this is bulk indexing, not a second embedding pass. The fusion weight comes from the choice (quickstart/
    choose.py), tuned on the judged training queries, never on test."""
    from searchtune.vectors.build import update_vectors

    result = update_vectors(client, index, embedder)
    say(f"indexed {result.count} vectors of {result.spec.model.id} into {result.index} "
        f"({result.docs_per_second:.1f} docs/s); '{index}' now searches it")
    return {"index": result.index, "docs": result.count, "seconds": round(result.seconds, 1),
            "docs_per_second": round(result.docs_per_second, 2), "model": result.spec.model.to_dict()}


def plain_pipeline() -> dict:
    """``bailian-rerank`` when BM25 alone won the validation: no processor, the application's query as it is."""
    return {"description": "BM25 as the cluster ranks it: no model beat it on the judged queries",
            "request_processors": []}


def hybrid_pipeline(model_id: str, endpoint: str, weight: float) -> dict:
    """``bailian-rerank`` as a hybrid pipeline: the served model embeds the query, the gateway fuses."""
    return {"description": "Hybrid retrieval with the fine-tuned searchtune embedder (kNN + BM25, fused)",
            "request_processors": [{"hybrid": {
                "model_id": model_id, "endpoint": f"{endpoint}/v1/embeddings", "k": 100, "num_candidates": 200,
                "fusion": {"method": "linear", "weight": round(weight, 4)}, "timeout_ms": 2000,
                "headers": {"Authorization": "Bearer $SEARCHTUNE_SECRET_BAILIAN_API_KEY"}}}]}
