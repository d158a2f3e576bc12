"""Distil the hybrid ranker into a cross-encoder: the small-data reranker recipe (``train rerank --distill``).

What the plain recipe got wrong, and what this one does instead (numbers in docs/reranker.md):

* labels: one judged positive against 7 BM25 negatives teaches a random head almost nothing on ~700 queries; here
  every candidate of the hybrid top-30 carries the teacher's graded score, judged documents lifted above them, and
  the corpus' titles add teacher-labelled queries (:mod:`searchtune.train.distill_data`);
* loss: listwise KL to the teacher (sentence-transformers' ``ListNetLoss`` against softmax(scale x labels));
* learning rates: the new head (and the pooler it reads) at ``head_learning_rate``, far above the body's, with
  warm-up, so it is not still near its random start when training ends;
* amount: a fixed number of list-passes chosen from the data size (:func:`distill_schedule`), sized so SciFact
  trains in under 15 minutes on 2 cores; a time budget only caps it, and the record says when it did.

:func:`distill_reranker` is the one entry point: ``train rerank --distill``, the quickstart and the k-fold stack
chooser call it with a dataset, a BM25 retriever and an embedder, and read the dev metrics from its record.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from searchtune.data.records import Dataset
from searchtune.data.retriever import Retriever
from searchtune.train.config import TrainConfig, load_config
from searchtune.train.data import DevSet, carve_dev
from searchtune.train.distill_data import (build_teacher_lists, corpus_title_queries, lists_dataset, teacher_run)
from searchtune.train.runner import TrainOutcome

log = logging.getLogger(__name__)

#: Query-document pairs one training run sees at most, and the epochs it makes at most of a small set. Measured
#: 2026-12-07 on SciFact's quickstart split (928 lists of 4, 2 idle AMX cores, bf16, 256 tokens, 18.9 pairs/s):
#: 110 / 220 / 440 steps gave test NDCG@10 0.454 / 0.679 / 0.743 alone and 0.790 / 0.810 / 0.829 fused with the
#: tuned hybrid, so the amount is what the 15-minute target holds: 14 000 pairs ~ 3.8 epochs, 438 steps, 12.4 min
#: with the dev evaluation (docs/reranker.md). Without AMX (AMD EPYC, 3.5 s a step) the same steps take ~26 min.
PAIR_BUDGET = 14_000
MAX_EPOCHS = 4.0


@dataclass(frozen=True)
class DistillSettings:
    """The distillation knobs (defaults chosen on SciFact's dev carve, docs/reranker.md)."""

    title_queries: int = 200       # extra teacher-labelled queries from corpus titles (fewer: the pair budget
                                   # covers ~1 pass of the judged lists plus these; the teacher builds faster)
    teacher_depth: int = 30        # hybrid candidates per query (the window the reranker sees when deployed)
    list_size: int = 4             # documents per training list (short lists: more queries per pair budget)
    scale: float = 8.0             # labels x scale before the softmax (inverse temperature)
    hybrid_weight: float | None = None   # the teacher's kNN weight; None: tuned on the dev queries
    knn_k: int = 100


def distill_schedule(lists: int, list_size: int, batch_size: int,
                     pair_budget: int = PAIR_BUDGET) -> tuple[float, dict[str, Any]]:
    """Epochs from the data size: ``min(4, pair_budget / pairs per epoch)``; the same data gives the same amount."""
    pairs_per_epoch = max(1, lists * list_size)
    epochs = min(MAX_EPOCHS, pair_budget / pairs_per_epoch)
    steps = max(1, math.ceil(epochs * lists / batch_size))
    rule = (f"min({MAX_EPOCHS:g} epochs, {pair_budget} pairs / {pairs_per_epoch} pairs per epoch) = {epochs:.2f} "
            f"epochs of {lists} lists")
    return epochs, {"rows": lists, "pairs_per_epoch": pairs_per_epoch, "epochs": round(epochs, 4),
                    "planned_steps": steps, "rule": rule}


def distill_config(overrides: dict[str, Any] | None = None) -> TrainConfig:
    """``train rerank`` settings with the distillation defaults (batch = lists per step)."""
    return load_config("rerank", None, {"loss": "listnet", "batch_size": 8, "mini_batch_size": 32,
                                         "learning_rate": 1.5e-4, "head_learning_rate": 2e-3, "warmup_ratio": 0.1,
                                         "early_stopping_patience": None, **(overrides or {})})


def indexed_vectors(client, index: str, embedder) -> tuple[Any, str, str] | None:
    """(client, index, vector field) when ``index`` already holds vectors of ``embedder``: the teacher's kNN is then
    the search the gateway runs, with no corpus pass; ``None``: the corpus is embedded for an exact kNN."""
    from searchtune.vectors.versions import index_meta, live_index

    live = live_index(client, index)
    vectors = ((index_meta(client, live) or {}).get("vectors") or {}) if live else {}
    if vectors.get("field") and vectors.get("model", {}).get("fingerprint") == embedder.identity.fingerprint:
        return client, index, vectors["field"]
    return None


def distill_reranker(dataset: Dataset, retriever: Retriever, embedder, output: str, *, train_split: str = "train",
                     dev_ids: Iterable[str] | None = None, config: TrainConfig | None = None,
                     settings: DistillSettings = DistillSettings(), callbacks: list | None = None,
                     data_info: dict[str, Any] | None = None, vector_index: tuple[Any, str, str] | None = None
                     ) -> TrainOutcome:
    """Train a cross-encoder on the hybrid teacher's lists of ``train_split`` (minus ``dev_ids``, default a 10 %
    carve) plus title queries; dev = the teacher's top-``teacher_depth`` of the dev queries. The record's
    ``dev.final`` holds the kept model's dev NDCG@10 alone and fused with the hybrid score (``dev_fusion_weight``:
    the cross-encoder's weight), ``data.distill.teacher`` the hybrid figures on the same dev queries.

    The teacher's kNN side is exact (the corpus embedded with ``embedder``), or the index's own vectors when
    ``vector_index`` = (client, index, vector field) is given (the search the gateway runs; no corpus pass)."""
    from searchtune.eval.hybrid import es_knn_run, exact_knn_run, tune_hybrid_weight
    from searchtune.eval.metrics import evaluate

    config = config or distill_config()
    qrels = dataset.split_qrels(train_split)
    judged = dataset.split_queries(train_split)
    dev_set = set(dev_ids) if dev_ids is not None else carve_dev(judged, config.dev_fraction, config.seed,
                                                                 config.dev_max_queries)
    train_q = {q: v for q, v in judged.items() if q not in dev_set}
    dev_q = {q: v for q, v in judged.items() if q in dev_set}
    titles = corpus_title_queries(dataset.corpus, settings.title_queries, config.seed)
    every = {**train_q, **dev_q, **titles}
    started = time.perf_counter()
    bm25, _ = retriever.retrieve(every, settings.knn_k)
    if vector_index is not None:
        client, index, field = vector_index
        knn = es_knn_run(client, index, field, embedder, every, k=settings.knn_k, num_candidates=2 * settings.knn_k)
    else:
        knn, _ = exact_knn_run(embedder, dataset.corpus, every, k=settings.knn_k)
    teacher_info: dict[str, Any] = {"queries": len(every), "title_queries": len(titles)}
    weight = settings.hybrid_weight
    if weight is None and dev_q:
        dev_qrels = {q: qrels[q] for q in dev_q}
        choice = tune_hybrid_weight(dev_qrels, {q: bm25.get(q, {}) for q in dev_q}, {q: knn.run[q] for q in dev_q})
        weight, teacher_info["weight_tuned_on"] = choice.weight, f"{len(dev_q)} dev queries"
    weight = 0.5 if weight is None else weight
    teacher = teacher_run(bm25, knn.run, weight, settings.teacher_depth)
    lists = build_teacher_lists({**train_q, **titles}, teacher, dataset.corpus, qrels=qrels,
                                list_size=settings.list_size, seed=config.seed)
    dev = None
    if dev_q:
        run = {q: teacher[q] for q in dev_q}
        docs = {d: dataset.corpus[d] for r in run.values() for d in r}
        dev = DevSet(queries=dev_q, qrels={q: qrels[q] for q in dev_q}, run=run, docs=docs)
        teacher_info["dev_ndcg@10"] = round(evaluate(dev.qrels, run).aggregate["NDCG@10"], 4)
        teacher_info["dev_bm25_ndcg@10"] = round(evaluate(dev.qrels, {q: bm25.get(q, {}) for q in dev_q})
                                                 .aggregate["NDCG@10"], 4)
    teacher_info |= {"fusion": "linear", "weight": weight, "seconds": round(time.perf_counter() - started, 1),
                     "lists": len(lists), "judged_lists": sum(t.source == "judged" for t in lists)}
    log.info("teacher: hybrid w=%.2f, %d lists (%d judged), dev NDCG@10 %s", weight, len(lists),
             teacher_info["judged_lists"], teacher_info.get("dev_ndcg@10"))
    info = {**(data_info or {}), "dataset_name": dataset.name, "split": train_split, "dev_split": train_split,
            "dev_queries": sorted(dev_q), "distill": {**asdict(settings), "teacher": teacher_info}}
    from searchtune.train.rerank import train_listwise

    epochs, plan = distill_schedule(len(lists), settings.list_size, config.batch_size)
    if config.max_steps and config.max_steps > 0:
        plan |= {"planned_steps": config.max_steps, "rule": "max_steps given"}
    # one dev evaluation, at the end (81 queries x 30 documents cost ~2 400 pairs, a sixth of the run): the
    # fused weight it picks is what the pipeline deploys; --eval-steps asks for more
    config = config.model_copy(update={"epochs": epochs, "dev_top_k": settings.teacher_depth,
                                       "eval_steps": config.eval_steps or plan["planned_steps"]})
    train_ds = lists_dataset(lists, settings.scale, config.seed)
    return train_listwise(config, train_ds, output, plan=plan, dev=dev, data_info=info, callbacks=callbacks,
                          pairs_per_example=settings.list_size)
