"""Gather a run's inputs: triplets from a file or mined from the index, and a dev split with BM25 candidates."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from searchtune.data.records import Dataset, DatasetError
from searchtune.data.retriever import Retriever
from searchtune.train.config import TrainConfig
from searchtune.train.data import (DevSet, Triplet, build_dev_set, carve_dev, manifest_digest, mine_triplets,
                                   read_triplets, triplets_digest)

log = logging.getLogger(__name__)


@dataclass
class TrainInputs:
    triplets: list[Triplet]
    dev: DevSet | None
    info: dict[str, Any] = field(default_factory=dict)


def prepare_inputs(config: TrainConfig, triplets_path: str | Path | None = None, dataset: Dataset | None = None,
                   dataset_dir: str | Path | None = None, retriever: Retriever | None = None,
                   split: str = "train") -> TrainInputs:
    """Triplets (file and/or mined) minus dev queries, plus the dev set when a dataset and a retriever (the index's
    BM25, built by the caller with ``config.fields``) are given."""
    if triplets_path is None and (dataset is None or retriever is None):
        raise DatasetError("<options>", "give --triplets FILE, or --dataset DIR with --index NAME")
    dev_ids: set[str] = set()
    dev_split = config.dev_split or split
    if dataset is not None and retriever is not None:
        if config.dev_split:
            dev_ids = set(dataset.split_queries(config.dev_split))
            if config.dev_max_queries:
                dev_ids = set(sorted(dev_ids)[:config.dev_max_queries])
        else:
            dev_ids = carve_dev(dataset.split_queries(split), config.dev_fraction, config.seed, config.dev_max_queries)
    triplets: list[Triplet] = []
    if triplets_path is not None:
        triplets.extend(t for t in read_triplets(triplets_path) if t.query_id is None or t.query_id not in dev_ids)
    if dataset is not None and retriever is not None and triplets_path is None:
        triplets.extend(mine_triplets(retriever, dataset, split, config.mining_top_k, config.num_negatives,
                                      exclude=dev_ids))
    if not triplets:
        raise DatasetError(triplets_path or dataset_dir or "<options>", "no training examples")
    dev = build_dev_set(retriever, dataset, dev_split, dev_ids, config.dev_top_k) if dev_ids else None
    index = retriever.describe().get("index") if retriever is not None else None
    info = {"triplets_sha256": triplets_digest(triplets), "triplets_file": str(triplets_path) if triplets_path else None,
            "dataset": str(dataset_dir) if dataset_dir else None, "dataset_name": dataset.name if dataset else None,
            "manifest_sha256": manifest_digest(dataset_dir), "index": index, "split": split,
            "dev_split": dev_split if dev else None, "dev_queries": sorted(dev_ids)}
    log.info("%d training triplets, %d dev queries", len(triplets), len(dev_ids))
    return TrainInputs(triplets=triplets, dev=dev, info=info)
