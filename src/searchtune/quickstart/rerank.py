"""The quickstart's cross-encoder: distilled from a hybrid ranker and deployed behind it.

``--task rerank`` distils from the zero-shot hybrid (base embedder + BM25); ``--task both`` (and ``auto`` when the
cap allows) from the hybrid stack the embedder's validation deployed, tuned or zero-shot. A cross-encoder trained on
a few hundred judged queries with mined negatives predicts the base rate (issue 14); the distilled one learns from
the hybrid ranker's scores (train/distill.py). It is deployed behind that ranker, its score fused with the hybrid
score by the weight dev chose, so a weak model leaves hybrid's order as it was; with ``both`` it is deployed only
when that fusion beats the hybrid ranker alone on the same dev queries (:func:`reranker_verdict`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from searchtune.data.records import Dataset
from searchtune.quickstart.options import QuickstartOptions

#: The header the pipelines send to our own endpoints (resolved from the gateway's secret store, never stored).
AUTH_HEADERS = {"Authorization": "Bearer $SEARCHTUNE_SECRET_BAILIAN_API_KEY"}
#: ``--train-option`` keys the cross-encoder shares with the embedder under ``--task both``.
SHARED_OVERRIDES = ("max_steps", "seed", "precision", "threads", "group_by_length", "dataloader_workers")
#: NDCG@10 on dev the fused cross-encoder must gain over hybrid alone to be deployed. Why a margin: its weight is
#: tuned on those same queries (weight 0 is hybrid itself, so the fused figure is never below it) and it costs
#: about 0.25 s per search on 2 AMX cores, ten times hybrid alone (docs/reranker.md); a dev gain under half a
#: point is within the noise of ~80 queries and not worth that latency.
MIN_DEV_GAIN = 0.005
#: Hybrid candidates the cross-encoder reranks: the window it was distilled on (DistillSettings.teacher_depth).
RERANK_WINDOW = 30


def train_distilled(o: QuickstartOptions, client, split: Dataset, index: str, output: Path, say,
                    embedder_spec: str | None = None, weight: float | None = None, store: str | None = None) -> dict:
    """Distil on the quickstart's train split, dev = its dev split; returns training.json's record.

    ``embedder_spec``: the teacher's embedder (default: the base model); the index's vectors are built with it
    first unless they already are (``--task both`` indexed the deployed stack's). ``weight``: the teacher's kNN
    weight (default: tuned on dev)."""
    from searchtune.models import default_base_model
    from searchtune.quickstart.hybrid import index_vectors
    from searchtune.search.retrieval import parse_fields
    from searchtune.search.retriever import BM25Retriever
    from searchtune.train.budget import TimeBudgetCallback
    from searchtune.train.distill import DistillSettings, distill_config, distill_reranker, indexed_vectors
    from searchtune.quickstart.training import TRAIN_SHARE
    from searchtune.serve.embedder import open_serving_embedder

    config = distill_config({"max_length": o.max_length, "seed": o.seed, **reranker_overrides(o)})
    # the served backend's vectors (the gateway's queries are embedded by the server), and a faster pass
    embedder = open_serving_embedder(embedder_spec or default_base_model(), max_length=o.max_length, store=store)
    try:
        vector_index = indexed_vectors(client, index, embedder)
        vectors = None if vector_index else index_vectors(client, index, embedder, say)
        dev = split.qrels.get("dev", {})
        merged = dataclasses.replace(split, qrels={**split.qrels, "distill": {**split.split_qrels("train"), **dev}})
        outcome = distill_reranker(merged, BM25Retriever(client, index, parse_fields(config.fields)), embedder,
                                   str(output), train_split="distill", dev_ids=sorted(dev) if dev else None,
                                   config=config, callbacks=[TimeBudgetCallback(o.budget_minutes * 60 * TRAIN_SHARE)],
                                   settings=DistillSettings(hybrid_weight=weight),
                                   vector_index=vector_index or indexed_vectors(client, index, embedder),
                                   data_info={"recipe": "distill"})
    finally:
        embedder.close()
    record = outcome.record
    if vectors is not None:
        record["vectors"] = vectors
    return record


def reranker_overrides(o: QuickstartOptions) -> dict:
    """``--train-option`` settings for the cross-encoder: all of them for ``--task rerank`` (its only model); after
    the embedder (``both``) only those that mean the same for both trainers, since e.g. ``loss=mnrl`` or a learning
    rate chosen for the embedder would break or mistune the distillation."""
    if o.task == "rerank":
        return dict(o.train_overrides)
    return {k: v for k, v in o.train_overrides.items() if k in SHARED_OVERRIDES}


def reranker_verdict(record: dict, min_gain: float = MIN_DEV_GAIN) -> tuple[bool, str]:
    """Whether the distilled cross-encoder, fused with the hybrid score, beats the hybrid ranker alone by at least
    ``min_gain`` NDCG@10 on the dev queries it was validated on (both measured there by distillation), and the
    report's line saying so."""
    teacher = record["data"]["distill"]["teacher"]
    final = (record.get("dev") or {}).get("final") or {}
    hybrid, fused, alone = teacher.get("dev_ndcg@10"), final.get("dev_fused_ndcg@10"), final.get("dev_ndcg@10")
    if hybrid is None or fused is None:
        return False, "cross-encoder not deployed: no dev queries to compare it with the hybrid ranker on"
    weight = float(final.get("dev_fusion_weight", 0.0))
    figures = (f"dev NDCG@10: cross-encoder fused with hybrid {fused:.4f} (weight {weight:.2f}), alone "
               f"{alone:.4f}, hybrid alone {hybrid:.4f}, on {len(record['data'].get('dev_queries') or [])} queries")
    if fused - hybrid >= min_gain:
        return True, f"cross-encoder deployed behind hybrid ({fused - hybrid:+.4f}); {figures}"
    return False, (f"cross-encoder not deployed: it did not beat hybrid alone by {min_gain:g} ({fused - hybrid:+.4f}); "
                   f"{figures}")


def with_reranker(hybrid_body: dict, rerank_endpoint: str, ce_model: str, record: dict) -> dict:
    """``hybrid_body``'s processors followed by ``neural_rerank`` of the hybrid top 30, with ``bm25_weight`` = 1 -
    the cross-encoder's dev fusion weight (the previous stage's share)."""
    from searchtune.gateway.pipelines import parse_pipeline

    ce_weight = float(((record.get("dev") or {}).get("final") or {}).get("dev_fusion_weight", 0.0))
    hybrid = hybrid_body["request_processors"][0]["hybrid"]
    body = {"description": f"{hybrid_body.get('description', 'Hybrid retrieval')}, reranked by the distilled "
                           "cross-encoder",
            "request_processors": [*hybrid_body["request_processors"],
                                   {"neural_rerank": {"model_id": ce_model, "endpoint": rerank_endpoint,
                                                      "field": "query_text", "top_k": RERANK_WINDOW,
                                                      "bm25_weight": round(1.0 - ce_weight, 4),
                                                      "headers": dict(hybrid.get("headers") or AUTH_HEADERS)}}]}
    parse_pipeline("definition", body)  # built wrong here is a bug: fail loudly, not at the first search
    return body


def hybrid_rerank_pipeline(embed_endpoint: str, rerank_endpoint: str, ce_model: str, record: dict) -> dict:
    """``hybrid`` (base embedder, the teacher's dev-tuned weight) then ``neural_rerank`` of its top 30 with
    ``bm25_weight`` = 1 - the cross-encoder's dev fusion weight (the previous stage's share)."""
    teacher = record["data"]["distill"]["teacher"]
    hybrid = {"description": "Hybrid retrieval (base embedder + BM25)",
              "request_processors": [
                  {"hybrid": {"endpoint": f"{embed_endpoint}/v1/embeddings", "k": 100,  # no model name: the
                              # server of the bundled folder answers to 'model', not to the HF id
                              "num_candidates": 200,
                              "fusion": {"method": "linear", "weight": round(teacher["weight"], 4)},
                              "timeout_ms": 2000, "headers": dict(AUTH_HEADERS)}}]}
    return with_reranker(hybrid, rerank_endpoint, ce_model, record)
