"""The quickstart's ``--task rerank`` stack: zero-shot hybrid retrieval, then the distilled cross-encoder.

A cross-encoder trained on a few hundred judged queries with mined negatives predicts the base rate (issue 14); the
distilled one learns from the hybrid ranker's scores (train/distill.py). It is deployed behind that ranker, its
score fused with the hybrid score by the weight dev chose, so a weak model leaves hybrid's order as it was.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from searchtune.data.records import Dataset
from searchtune.quickstart.options import QuickstartOptions

#: Hybrid candidates the cross-encoder reranks: the window it was distilled on (DistillSettings.teacher_depth).
RERANK_WINDOW = 30


def train_distilled(o: QuickstartOptions, client, split: Dataset, index: str, output: Path, say) -> dict:
    """Index the base embedder's vectors (the deployed hybrid's, and the teacher's kNN), then distil on the
    quickstart's train split, dev = its dev split; returns training.json's record."""
    from searchtune.models import default_base_model
    from searchtune.quickstart.hybrid import index_vectors
    from searchtune.search.retrieval import parse_fields
    from searchtune.search.retriever import BM25Retriever
    from searchtune.train.budget import TimeBudgetCallback
    from searchtune.train.distill import distill_config, distill_reranker, indexed_vectors
    from searchtune.quickstart.training import TRAIN_SHARE
    from searchtune.serve.embedder import open_serving_embedder

    config = distill_config({"max_length": o.max_length, "seed": o.seed, **o.train_overrides})
    # the served backend's vectors (the gateway's queries are embedded by the server), and a faster pass
    embedder = open_serving_embedder(default_base_model(), max_length=o.max_length)
    try:
        vectors = index_vectors(client, index, embedder, say)
        dev = split.qrels.get("dev", {})
        merged = dataclasses.replace(split, qrels={**split.qrels, "distill": {**split.split_qrels("train"), **dev}})
        outcome = distill_reranker(merged, BM25Retriever(client, index, parse_fields(config.fields)), embedder,
                                   str(output), train_split="distill", dev_ids=sorted(dev) if dev else None,
                                   config=config, callbacks=[TimeBudgetCallback(o.budget_minutes * 60 * TRAIN_SHARE)],
                                   vector_index=indexed_vectors(client, index, embedder),
                                   data_info={"recipe": "distill"})
    finally:
        embedder.close()
    record = outcome.record
    record["vectors"] = vectors
    return record


def hybrid_rerank_pipeline(embed_endpoint: str, rerank_endpoint: str, ce_model: str, record: dict) -> dict:
    """``hybrid`` (base embedder, the teacher's dev-tuned weight) then ``neural_rerank`` of its top 30 with
    ``bm25_weight`` = 1 - the cross-encoder's dev fusion weight (the previous stage's share)."""
    from searchtune.gateway.pipelines import parse_pipeline

    teacher = record["data"]["distill"]["teacher"]
    ce_weight = float(((record.get("dev") or {}).get("final") or {}).get("dev_fusion_weight", 0.0))
    auth = {"Authorization": "Bearer $SEARCHTUNE_SECRET_BAILIAN_API_KEY"}
    body = {"description": "Hybrid retrieval (base embedder + BM25), reranked by the distilled cross-encoder",
            "request_processors": [
                {"hybrid": {"endpoint": f"{embed_endpoint}/v1/embeddings", "k": 100,  # no model name: the
                            # server of the bundled folder answers to 'model', not to the HF id
                            "num_candidates": 200, "fusion": {"method": "linear", "weight": round(teacher["weight"], 4)},
                            "timeout_ms": 2000, "headers": auth}},
                {"neural_rerank": {"model_id": ce_model, "endpoint": rerank_endpoint, "field": "query_text",
                                   "top_k": RERANK_WINDOW, "bm25_weight": round(1.0 - ce_weight, 4),
                                   "headers": auth}}]}
    parse_pipeline("definition", body)  # built wrong here is a bug: fail loudly, not at the first search
    return body
