"""The quickstart's training stage: the `train` subcommand's own functions; the run's time budget only caps it.

How much is trained comes from the data size (train/schedule.py), so the same data and command give the same
model on an idle and on a busy machine; the budget only stops a run that would overrun it, and then the report
says so in its first lines.

An embedder is not scored on dev while it trains: the stack choice that follows (train/choose.py) validates the
trained model on the same dev carve the way it is deployed (exact kNN over the corpus fused with BM25), so scoring
it during training as well (reranking BM25's top 100 at every epoch end) was a second, less faithful measurement.
On SciFact those two evaluations cost 100 s and 140 s of the quickstart's 25 minutes, and picked the last epoch
anyway; the last step is kept. ``--train-option evaluate_dev=true`` brings them back.
"""

from __future__ import annotations

import logging
from pathlib import Path

from searchtune.data.records import Dataset
from searchtune.quickstart.options import QuickstartOptions

log = logging.getLogger(__name__)

#: Share of the whole budget training may use at most; the rest covers indexing, mining, serving and evaluation.
TRAIN_SHARE = 0.6
#: Memory the training stage may plan for, within the whole run's 6 GiB target (Elasticsearch included). Measured
#: on SciFact (docs/quickstart.md): with plain MNRL (estimate 4.1 GiB at 32 x 256 tokens, 3.7 GiB resident) the run
#: peaks at 5.45 GiB, while training, once the trainer's freed heap is handed back afterwards (runner.py; without
#: that, 5.70-6.80 GiB when the later stages started on top of it). So plain MNRL fits, and it trains SciFact in
#: 333 s instead of cached MNRL's 442 s (a third less compute). Larger batches or ``max_length`` raise the estimate
#: past this budget and fall back to cached MNRL.
TRAIN_MEMORY_GIB = 4.2


def train_within_budget(o: QuickstartOptions, client, split: Dataset, index: str, triplets_path: Path,
                        output: Path) -> dict:
    from searchtune.train.budget import TimeBudgetCallback
    from searchtune.train.config import load_config
    from searchtune.train.inputs import prepare_inputs

    overrides: dict = {"dev_split": "dev", "max_length": o.max_length, "seed": o.seed}
    task = "embed" if o.trains_embedder else "rerank"
    if task == "embed":  # see QuickstartOptions.embed_loss ('auto': train/memory.py decides from TRAIN_MEMORY_GIB)
        overrides |= {"loss": o.embed_loss, "mini_batch_size": o.embed_mini_batch_size,
                      "memory_budget_gib": TRAIN_MEMORY_GIB, "evaluate_dev": False}
    overrides |= o.train_overrides
    config = load_config(task, None, overrides)
    from searchtune.search.retrieval import parse_fields
    from searchtune.search.retriever import BM25Retriever

    retriever = BM25Retriever(client, index, parse_fields(config.fields))
    inputs = prepare_inputs(config, triplets_path=triplets_path, dataset=split, dataset_dir=o.dataset,
                            retriever=retriever, split="train")
    if o.judgments_info:  # as `train --judgments` records it: the registry card names the list version
        inputs.info["judgments"] = o.judgments_info
    if task == "embed":
        from searchtune.train.embed import train_embedder as train_fn
    else:
        from searchtune.train.rerank import train_reranker as train_fn
    seconds = o.budget_minutes * 60 * TRAIN_SHARE
    log.info("training time cap %.0fs (the amount trained is fixed by the data size)", seconds)
    outcome = train_fn(config, inputs.triplets, str(output), dev=inputs.dev, data_info=inputs.info,
                       callbacks=[TimeBudgetCallback(seconds)])
    return outcome.record
