"""``train rerank``: fine-tune a cross-encoder with a pointwise (BCE) or listwise (LambdaLoss, ListNet) loss.

A cross-encoder started from an embedding model gets a fresh classification head; with only hundreds of judged
queries that head and the cross-attention are under-trained (the naive recipe scores below BM25 on SciFact). Start
it from an existing cross-encoder, or give it much more data, when you can; docs/training.md has the numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from searchtune.models import resolve_model
from searchtune.train.config import TrainConfig
from searchtune.train.data import DevSet, Triplet, listwise_dataset, pointwise_dataset
from searchtune.train.evaluator import DevRerankEvaluator
from searchtune.train.figures import RunFigures
from searchtune.train.runner import (TrainOutcome, local_work_dir, run_trainer, training_arguments, use_bf16,
                                     world_size)
from searchtune.train.schedule import resolve_schedule
from searchtune.train.throughput import configure_threads, set_attention_dropout

log = logging.getLogger(__name__)


def build_loss(model, config: TrainConfig):
    from sentence_transformers.cross_encoder import losses

    if config.loss == "lambda":
        return losses.LambdaLoss(model, mini_batch_size=config.mini_batch_size)
    if config.loss == "listnet":
        return losses.ListNetLoss(model, mini_batch_size=config.mini_batch_size)
    return losses.BinaryCrossEntropyLoss(model)


def train_reranker(config: TrainConfig, triplets: Sequence[Triplet], output: str, dev: DevSet | None = None,
                   data_info: dict[str, Any] | None = None, resume: bool | str | None = None,
                   keep_checkpoints: bool = False, callbacks: list | None = None) -> TrainOutcome:
    """Train a cross-encoder from ``config.base_model`` on ``triplets``; same selection and output as embedders."""
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from transformers import EarlyStoppingCallback, set_seed

    threads = configure_threads(config.threads)
    set_seed(config.seed)
    base = resolve_model(config.base_model)
    model = CrossEncoder(base, num_labels=1, max_length=config.max_length)
    set_attention_dropout(model, config.attention_dropout)
    listwise = config.loss in ("lambda", "listnet")
    build = listwise_dataset if listwise else pointwise_dataset
    train_ds = build(triplets, config.num_negatives, config.seed)
    config, plan = resolve_schedule(config, len(train_ds), world_size())
    bf16 = use_bf16(config.precision)
    work_dir = local_work_dir(output)
    evaluator = DevRerankEvaluator(dev, kind="cross-encoder", top_k=config.dev_top_k, bf16=bf16,
                                   primary_metric=config.select_metric) if dev and len(dev) else None
    args = training_arguments(CrossEncoderTrainingArguments, config, work_dir, evaluator is not None, bf16)
    cbs = list(callbacks or [])
    if evaluator is not None and config.early_stopping_patience:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=train_ds, loss=build_loss(model, config),
                                  evaluator=evaluator, callbacks=cbs)
    pairs = (1 + config.num_negatives) if listwise else 1
    log.info("training cross-encoder from %s on %d examples (%s, bf16=%s, %d steps planned: %s)", base,
             len(train_ds), config.loss, bf16, plan["planned_steps"], plan["rule"])
    return run_trainer(trainer, config=config, base_model=base, output=output, work_dir=work_dir, evaluator=evaluator,
                       pairs_per_example=pairs, num_examples=len(train_ds), data_info=data_info or {}, resume=resume,
                       keep_checkpoints=keep_checkpoints, figures=RunFigures(plan=plan, threads=threads))
