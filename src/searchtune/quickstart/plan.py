"""What the quickstart trains when told ``--task auto`` (the default): the embedder, and the distilled cross-encoder
after it when the run's time cap allows both.

Why an estimate from the data and not a timer: the decision must not depend on how busy the machine is (issue 15:
the same command must give the same answer), so it is arithmetic on the data sizes with fixed per-unit costs
measured on 2 cores (docs/quickstart.md), the slower of the two CPUs this project measured (an AMD EPYC without
AMX). The cap itself still stops training that runs over (train/budget.py); the estimate only decides whether the
cross-encoder is attempted at all, and the report says which way it went and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Seconds per unit on 2 idle cores (AMD EPYC, AVX512-BF16, no AMX; docs/quickstart.md, 2026-12-04).
EMBED_STEP_S = 6.5         # plain MNRL, 32 triplets x 256 tokens
CE_STEP_S = 3.5            # distillation, 8 lists x 4 documents x 256 tokens
CE_PAIR_S = 0.02           # serving the cross-encoder, per (query, document) pair of 256 tokens: 1.9 s for
                           # the 100 pairs a 100-hit search reranked before the rerank window held (AMD);
                           # 20 pairs in 0.14 s on the AMX CPU (docs/quickstart.md, 2026-12-07)
CORPUS_DOC_S = 0.02        # one document embedded by the serving backend (about 50 documents/s)
FIXED_S = 90.0             # node, index, data, servers, gateway, report
#: Steps a distillation run plans at most: its pair budget (train/distill.py, 14 000) / 4 documents per list / 8 lists
#: per step.
CE_MAX_STEPS = 438


@dataclass(frozen=True)
class TaskPlan:
    task: str                 # what runs: 'embed' or 'both' (or the task asked for, when not 'auto')
    reason: str               # one line for the log and the report
    embed_s: float = 0.0      # estimated seconds of the embedder-only run
    reranker_s: float = 0.0   # estimated extra seconds of the cross-encoder


def estimate_embed_s(train_queries: int, corpus_docs: int, batch_size: int = 32, epochs: float = 2.0,
                     max_steps: int | None = None) -> float:
    """The embedder-only run: training, two corpus passes (the stack choice's base and tuned models), fixed parts."""
    steps = max_steps if max_steps and max_steps > 0 else math.ceil(epochs * math.ceil(train_queries / batch_size))
    return FIXED_S + steps * EMBED_STEP_S + 2 * corpus_docs * CORPUS_DOC_S


def estimate_reranker_s(dev_queries: int, test_queries: int, window: int, max_steps: int | None = None) -> float:
    """What the cross-encoder adds: distillation, scoring its dev lists, and reranking every test search."""
    steps = max_steps if max_steps and max_steps > 0 else CE_MAX_STEPS
    return steps * CE_STEP_S + (dev_queries + test_queries) * window * CE_PAIR_S


def plan_task(asked: str, budget_minutes: float, *, train_queries: int, dev_queries: int, test_queries: int,
              corpus_docs: int, window: int, max_steps: int | None = None) -> TaskPlan:
    """``asked`` unchanged unless it is ``auto``; then ``both`` when the estimate of both fits ``budget_minutes``,
    else ``embed``, with the figures in the reason."""
    if asked != "auto":
        return TaskPlan(asked, f"--task {asked} asked for")
    embed_s = estimate_embed_s(train_queries, corpus_docs, max_steps=max_steps)
    reranker_s = estimate_reranker_s(dev_queries, test_queries, window, max_steps=max_steps)
    total_min, budget = (embed_s + reranker_s) / 60, budget_minutes
    if total_min <= budget:
        return TaskPlan("both", f"training the embedder and then the cross-encoder: both estimated at "
                                f"{total_min:.1f} min, within the {budget:g} min cap", embed_s, reranker_s)
    return TaskPlan("embed", f"training the embedder only: with the cross-encoder the run is estimated at "
                             f"{total_min:.1f} min, over the {budget:g} min cap (--budget-minutes; --task both "
                             f"to train it anyway)", embed_s, reranker_s)
