"""The hybrid fusion weight of a freshly trained embedder, tuned on the dev queries and stored with the model.

A tuned embedder is deployed as hybrid retrieval (kNN over the index's vectors fused with BM25, see the gateway's
``hybrid`` processor), so its model card carries the weight that fusion should use: exact kNN of the dev queries
over the whole corpus with the trained model, fused with the dev set's BM25 candidates, weight picked on dev
NDCG@10. ``training.json`` holds it under ``hybrid``; ``models register`` copies the card into the registry, so the
weight lives with the model version, and ``eval --hybrid`` and the quickstart read it from there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from searchtune.data.records import Document
from searchtune.train.data import DevSet

log = logging.getLogger(__name__)

#: Above this many documents the corpus is not embedded at the end of training (tune with `eval --hybrid` instead).
MAX_CORPUS_DOCS = 50_000


class _TrainedEmbedder:
    """The in-training model as an :class:`~searchtune.vectors.embedders.Embedder` for exact kNN."""

    def __init__(self, scorer):
        self.scorer = scorer
        model = scorer.model
        self.dims = int(getattr(model, "get_embedding_dimension", model.get_sentence_embedding_dimension)())

    def embed(self, texts: list[str]):
        return self.scorer.embed(texts).numpy()


def hybrid_dev_weight(scorer, dev: DevSet, corpus: Mapping[str, Document] | None,
                      max_docs: int = MAX_CORPUS_DOCS) -> dict[str, Any] | None:
    """``{"fusion": "linear", "weight", "dev_ndcg@10", "dev_bm25_ndcg@10", "dev_queries", "corpus_docs", "seconds"}``,
    or ``None`` when there is no dev set or the corpus is missing or too large."""
    from searchtune.eval.hybrid import exact_knn_run, tune_hybrid_weight
    from searchtune.eval.metrics import evaluate

    if not dev or not len(dev) or not corpus:
        return None
    if len(corpus) > max_docs:
        log.info("corpus of %d documents is above %d: hybrid weight not tuned at training time", len(corpus), max_docs)
        return None
    started = time.perf_counter()
    knn, _ = exact_knn_run(_TrainedEmbedder(scorer), corpus, dev.queries, k=100)
    choice = tune_hybrid_weight(dev.qrels, dev.run, knn.run)
    bm25 = evaluate(dev.qrels, dev.run).aggregate["NDCG@10"]
    result = {"fusion": "linear", "weight": choice.weight, "dev_ndcg@10": round(choice.value, 4),
              "dev_bm25_ndcg@10": round(bm25, 4), "dev_queries": len(dev), "corpus_docs": len(corpus),
              "knn": "exact", "seconds": round(time.perf_counter() - started, 1)}
    log.info("hybrid weight %.2f on dev (NDCG@10 %.4f vs BM25 %.4f)", choice.weight, choice.value, bm25)
    return result
