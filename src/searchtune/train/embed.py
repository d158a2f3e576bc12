"""``train embed``: fine-tune a bi-encoder with multiple-negatives ranking and mined hard negatives.

On small judged sets (hundreds of queries) this is the recipe that wins: the pretrained embedding space already
ranks well, in-batch negatives multiply the signal of each judged pair, and the tuned model fused with BM25 beats
both (see docs/training.md for the measurements).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from searchtune.data.records import Document
from searchtune.models import resolve_model
from searchtune.train.config import TrainConfig
from searchtune.train.data import DevSet, Triplet, embed_dataset
from searchtune.train.batching import PretokenizedTexts, grouped_trainer_class, row_lengths
from searchtune.train.evaluator import dev_evaluator
from searchtune.train.figures import RunFigures
from searchtune.train.memory import plan_embed_loss
from searchtune.train.runner import (TrainOutcome, local_work_dir, run_trainer, training_arguments, use_bf16,
                                     world_size)
from searchtune.train.schedule import resolve_schedule
from searchtune.train.throughput import configure_threads, set_attention_dropout

log = logging.getLogger(__name__)


def build_loss(model, config: TrainConfig):
    from sentence_transformers.sentence_transformer import losses

    if config.loss == "cached-mnrl":
        return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size)
    return losses.MultipleNegativesRankingLoss(model)


def train_embedder(config: TrainConfig, triplets: Sequence[Triplet], output: str, dev: DevSet | None = None,
                   data_info: dict[str, Any] | None = None, resume: bool | str | None = None,
                   keep_checkpoints: bool = False, callbacks: list | None = None,
                   corpus: Mapping[str, Document] | None = None) -> TrainOutcome:
    """Train ``config.base_model`` on ``triplets``; select the checkpoint on ``dev`` when given; save to ``output``.

    The amount of training comes from the data size (train/schedule.py), the loss from the memory estimate
    (train/memory.py), the batches from train/batching.py; ``callbacks`` may hold a time budget, which only caps.
    With ``corpus`` and ``dev``, the hybrid fusion weight of the kept model is tuned on dev and stored in
    training.json (``hybrid``; see train/hybrid_weight.py).
    """
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers import EarlyStoppingCallback, set_seed

    threads = configure_threads(config.threads)
    set_seed(config.seed)
    base = resolve_model(config.base_model)
    model = SentenceTransformer(base)
    model.max_seq_length = config.max_length
    set_attention_dropout(model, config.attention_dropout)
    train_ds = embed_dataset(triplets, config.num_negatives, config.seed)
    config, plan = resolve_schedule(config, len(train_ds), world_size())
    memory = plan_embed_loss(model, requested=config.loss, batch_size=config.batch_size,
                             mini_batch_size=config.mini_batch_size, num_negatives=config.num_negatives,
                             max_length=config.max_length, attention_dropout=config.attention_dropout,
                             budget_gib=config.memory_budget_gib)
    config = config.model_copy(update={"loss": memory.loss})
    texts = PretokenizedTexts(model, [t for column in train_ds.column_names for t in train_ds[column]])
    bf16 = use_bf16(config.precision)
    work_dir = local_work_dir(output)
    evaluator = dev_evaluator(dev, "embedding", config, bf16)
    args = training_arguments(SentenceTransformerTrainingArguments, config, work_dir, evaluator is not None, bf16,
                              batch_sampler=BatchSamplers.NO_DUPLICATES)
    cbs = list(callbacks or [])
    if evaluator is not None and config.early_stopping_patience:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer_cls = grouped_trainer_class(SentenceTransformerTrainer) if config.group_by_length else SentenceTransformerTrainer
    trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, loss=build_loss(model, config),
                          evaluator=evaluator, callbacks=cbs,
                          data_collator=SentenceTransformerDataCollator(preprocess_fn=texts))
    if config.group_by_length:
        trainer.row_lengths = row_lengths(train_ds, texts)
    log.info("training embedder from %s on %d examples (%s, bf16=%s, %d steps planned: %s)", base, len(train_ds),
             config.loss, bf16, plan["planned_steps"], plan["rule"])
    return run_trainer(trainer, config=config, base_model=base, output=output, work_dir=work_dir, evaluator=evaluator,
                       pairs_per_example=1 + config.num_negatives, num_examples=len(train_ds),
                       data_info=data_info or {}, resume=resume, keep_checkpoints=keep_checkpoints,
                       finalize=_hybrid_finalizer(dev, corpus, bf16),
                       figures=RunFigures(plan=plan, threads=threads, texts=texts, memory=memory.as_record()))


def _hybrid_finalizer(dev: DevSet | None, corpus: Mapping[str, Document] | None, bf16: bool):
    if not dev or not corpus:
        return None

    def finalize(model, record: dict[str, Any]) -> None:
        import torch

        from searchtune.scoring import scorer_for_model
        from searchtune.train.hybrid_weight import hybrid_dev_weight

        model.eval()
        scorer = scorer_for_model(model, "embedding", torch.bfloat16 if bf16 else torch.float32)
        weight = hybrid_dev_weight(scorer, dev, corpus)
        if weight is not None:
            record["hybrid"] = weight

    return finalize
