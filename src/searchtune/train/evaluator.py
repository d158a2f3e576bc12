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
from searchtune.train.data import DevSet

log = logging.getLogger(__name__)


class _InTrainingScorer:
    """Adapts the model being trained to the scorer interface :func:`rerank_run` expects."""

    def __init__(self, model, kind: str, bf16: bool, batch_size: int = 64):
        self.model, self.kind, self.bf16, self.batch_size = model, kind, bf16, batch_size

    def _autocast(self):
        device = self.model.device.type
        return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=self.bf16)

    def embed(self, texts: list[str]) -> torch.Tensor:
        with torch.inference_mode(), self._autocast():
            vectors = self.model.encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                        normalize_embeddings=True, show_progress_bar=False)
        return vectors.float().cpu()

    def score(self, query: str, documents: list[str]) -> list[float]:
        with torch.inference_mode(), self._autocast():
            scores = self.model.predict([(query, d) for d in documents], batch_size=self.batch_size,
                                        show_progress_bar=False, convert_to_numpy=True)
        return [float(s) for s in scores.reshape(len(documents), -1)[:, 0]]


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
        scorer = _InTrainingScorer(model, self.kind, self.bf16)
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
