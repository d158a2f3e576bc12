"""``train rerank``: fine-tune a cross-encoder with a pointwise (BCE), listwise (LambdaLoss, ListNet) or distilled
(:mod:`searchtune.train.distill`) loss.

A cross-encoder started from an embedding model gets a fresh classification head. At the body's learning rate
(2e-5) a few hundred steps leave that head near its random start and the model predicts the base rate (the issue
measured logits spanning -1.89..-1.70 on 20 documents): the head and the pooler it reads therefore train at
``head_learning_rate`` (:func:`head_optimizer`). docs/reranker.md has the numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from searchtune.models import resolve_model
from searchtune.scoring import fp32_head
from searchtune.train.config import TrainConfig
from searchtune.train.data import DevSet, Triplet, listwise_dataset, pointwise_dataset
from searchtune.train.evaluator import dev_evaluator
from searchtune.train.figures import RunFigures
from searchtune.train.runner import (TrainOutcome, local_work_dir, run_trainer, training_arguments, use_bf16,
                                     world_size)
from searchtune.train.schedule import resolve_schedule
from searchtune.train.throughput import configure_threads, set_attention_dropout

log = logging.getLogger(__name__)


def build_loss(model, config: TrainConfig):
    import torch
    from sentence_transformers.cross_encoder import losses

    if config.loss == "lambda":
        return losses.LambdaLoss(model, mini_batch_size=config.mini_batch_size)
    if config.loss == "listnet":  # on raw logits: the teacher's softmax is compared with the student's
        return losses.ListNetLoss(model, activation_fn=torch.nn.Identity(), mini_batch_size=config.mini_batch_size)
    return losses.BinaryCrossEntropyLoss(model)


def head_modules(model) -> list:
    """The modules a bi-encoder checkpoint never trained for relevance: the classification head and the pooler."""
    inner = model.model
    body = getattr(inner, getattr(inner, "base_model_prefix", ""), None)
    found = [getattr(inner, "classifier", None), getattr(inner, "score", None), getattr(body, "pooler", None)]
    return [m for m in found if m is not None]


def head_optimizer(model, config: TrainConfig):
    """AdamW with the head (and pooler) at ``head_learning_rate`` and the body at ``learning_rate``; ``None`` when
    no head rate is set (the trainer's own optimizer). The trainer's warm-up/decay schedule scales both groups."""
    import torch

    if not config.head_learning_rate:
        return None
    head_ids = {id(p) for m in head_modules(model) for p in m.parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            no_decay = name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
            groups.setdefault((id(param) in head_ids, no_decay), []).append(param)
    params = [{"params": ps, "lr": config.head_learning_rate if head else config.learning_rate,
               "weight_decay": 0.0 if no_decay else config.weight_decay} for (head, no_decay), ps in groups.items()]
    return torch.optim.AdamW(params, lr=config.learning_rate)


def new_cross_encoder(config: TrainConfig):
    from sentence_transformers.cross_encoder import CrossEncoder

    base = resolve_model(config.base_model)
    model = CrossEncoder(base, num_labels=1, max_length=config.max_length)
    set_attention_dropout(model, config.attention_dropout)
    return fp32_head(model), base


def train_reranker(config: TrainConfig, triplets: Sequence[Triplet], output: str, dev: DevSet | None = None,
                   data_info: dict[str, Any] | None = None, resume: bool | str | None = None,
                   keep_checkpoints: bool = False, callbacks: list | None = None) -> TrainOutcome:
    """Train a cross-encoder from ``config.base_model`` on ``triplets``; same selection and output as embedders."""
    listwise = config.loss in ("lambda", "listnet")
    build = listwise_dataset if listwise else pointwise_dataset
    train_ds = build(triplets, config.num_negatives, config.seed)
    config, plan = resolve_schedule(config, len(train_ds), world_size())
    pairs = (1 + config.num_negatives) if listwise else 1
    return fit_cross_encoder(config, train_ds, output, plan=plan, dev=dev, data_info=data_info, resume=resume,
                             keep_checkpoints=keep_checkpoints, callbacks=callbacks, pairs_per_example=pairs)


def train_listwise(config: TrainConfig, train_ds, output: str, *, plan: dict[str, Any], dev: DevSet | None = None,
                   data_info: dict[str, Any] | None = None, callbacks: list | None = None,
                   pairs_per_example: int = 8) -> TrainOutcome:
    """Train on ready ``query, docs, labels`` rows (the distillation lists) with ``config.epochs`` already fixed."""
    return fit_cross_encoder(config, train_ds, output, plan=plan, dev=dev, data_info=data_info, callbacks=callbacks,
                             pairs_per_example=pairs_per_example)


def fit_cross_encoder(config: TrainConfig, train_ds, output: str, *, plan: dict[str, Any], dev: DevSet | None,
                      data_info: dict[str, Any] | None, pairs_per_example: int, resume: bool | str | None = None,
                      keep_checkpoints: bool = False, callbacks: list | None = None) -> TrainOutcome:
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from transformers import EarlyStoppingCallback, set_seed

    threads = configure_threads(config.threads)
    set_seed(config.seed)
    model, base = new_cross_encoder(config)
    bf16 = use_bf16(config.precision)
    work_dir = local_work_dir(output)
    evaluator = dev_evaluator(dev, "cross-encoder", config, bf16)
    args = training_arguments(CrossEncoderTrainingArguments, config, work_dir, evaluator is not None, bf16)
    cbs = list(callbacks or [])
    if evaluator is not None and config.early_stopping_patience:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=train_ds, loss=build_loss(model, config),
                                  evaluator=evaluator, callbacks=cbs, optimizers=(head_optimizer(model, config), None))
    log.info("training cross-encoder from %s on %d examples (%s, bf16=%s, head lr %s, %d steps planned: %s)", base,
             len(train_ds), config.loss, bf16, config.head_learning_rate, plan["planned_steps"], plan["rule"])
    return run_trainer(trainer, config=config, base_model=base, output=output, work_dir=work_dir, evaluator=evaluator,
                       pairs_per_example=pairs_per_example, num_examples=len(train_ds), data_info=data_info or {},
                       resume=resume, keep_checkpoints=keep_checkpoints, figures=RunFigures(plan=plan, threads=threads))
