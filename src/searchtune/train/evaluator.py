"""Dev evaluation during training: rerank the BM25 candidates of dev queries and score with ranking metrics.

Loss on held-out pairs says little about ranking; NDCG@10 of the reranked BM25 list — alone and fused with BM25,
the way the model is deployed — is what picks the best checkpoint and drives early stopping.
"""

from __future__ import annotations

import logging
import time

import torch
from sentence_transformers.base.evaluation import BaseEvaluator

from searchtune.eval.metrics import evaluate
from searchtune.eval.rerank import rerank_run, tune_fusion_weight
from searchtune.scoring import scorer_for_model
from searchtune.train.config import TrainConfig
from searchtune.train.data import DevSet

log = logging.getLogger(__name__)


class DevRerankEvaluator(BaseEvaluator):
    """Reports ``dev_ndcg@10`` (model alone), ``dev_fused_ndcg@10`` (best fusion weight), ``dev_fusion_weight``."""

    def __init__(self, dev: DevSet, kind: str, top_k: int = 100, bf16: bool = False,
                 primary_metric: str = "fused_ndcg@10", name: str = "dev"):
        super().__init__()
        self.dev, self.kind, self.top_k, self.bf16, self.name = dev, kind, top_k, bf16, name
        self.primary_metric = primary_metric
        self.history: list[dict] = []

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        started = time.perf_counter()
        was_training = model.training
        model.eval()
        scorer = scorer_for_model(model, self.kind, torch.bfloat16 if self.bf16 else torch.float32, batch_size=64)
        reranked = rerank_run(scorer, self.dev.queries, self.dev.run, self.dev.docs, top_k=self.top_k)
        if was_training:
            model.train()
        alone = evaluate(self.dev.qrels, reranked).aggregate
        fusion = tune_fusion_weight(self.dev.qrels, self.dev.run, reranked)
        metrics = {"ndcg@10": alone["NDCG@10"], "mrr@10": alone["MRR@10"], "fused_ndcg@10": fusion.value,
                   "fusion_weight": fusion.weight}
        record = {"epoch": epoch, "step": steps, **metrics, "seconds": round(time.perf_counter() - started, 2)}
        self.history.append(record)
        log.info("dev @ step %s: NDCG@10 %.4f, fused %.4f (w=%.2f)", steps, metrics["ndcg@10"],
                 metrics["fused_ndcg@10"], metrics["fusion_weight"])
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics


def dev_evaluator(dev: DevSet | None, kind: str, config: TrainConfig, bf16: bool) -> DevRerankEvaluator | None:
    """The evaluator a trainer scores dev with, or None when there is nothing to score: no dev queries, or
    ``config.evaluate_dev`` false (the caller validates afterwards; the dev split stays held out all the same)."""
    if not (dev and len(dev) and config.evaluate_dev):
        return None
    return DevRerankEvaluator(dev, kind=kind, top_k=config.dev_top_k, bf16=bf16, primary_metric=config.select_metric)
