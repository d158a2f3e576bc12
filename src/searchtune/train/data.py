"""Turn judged data into what the sentence-transformers trainers consume.

Inputs are triplet records (query, positive, negatives, query_id) — read from JSONL or mined from BM25 through
``searchtune.data.mining`` — and, when a dataset and an index are given, a dev split whose BM25 candidates are
reranked during training to pick the best checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from searchtune.data.examples import Triplet
from searchtune.data.examples import read_triplets as data_read_triplets
from searchtune.data.mining import mine_negatives
from searchtune.data.records import Dataset, DatasetError, Document, Qrels, Query
from searchtune.data.retriever import Retriever

log = logging.getLogger(__name__)

Run = dict[str, dict[str, float]]


def read_triplets(path: str | Path) -> list[Triplet]:
    """The data stage's triplets reader (errors name file, line and field), refusing an empty file."""
    triplets = data_read_triplets(path)
    if not triplets:
        raise DatasetError(path, "no triplets found")
    return triplets


def triplets_digest(triplets: Sequence[Triplet]) -> str:
    """sha256 of the training examples, recorded in training.json so a model names the exact data it saw."""
    digest = hashlib.sha256()
    for t in triplets:
        digest.update(json.dumps([t.query_id, t.query, t.positive, t.negatives]).encode())
    return digest.hexdigest()


def manifest_digest(dataset_dir: str | Path | None) -> str | None:
    """sha256 of the dataset folder's ``manifest.json`` when it has one."""
    if dataset_dir is None:
        return None
    manifest = Path(dataset_dir) / "manifest.json"
    return hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None


def carve_dev(query_ids: Iterable[str], fraction: float, seed: int, max_queries: int | None = None) -> set[str]:
    """A reproducible random ``fraction`` of query ids held out of training for checkpoint and fusion selection."""
    ids = sorted(set(query_ids))
    if fraction <= 0 or len(ids) < 2:
        return set()
    count = max(1, round(len(ids) * fraction))
    if max_queries:
        count = min(count, max_queries)
    return set(random.Random(seed).sample(ids, min(count, len(ids) - 1)))


def mine_triplets(retriever: Retriever, dataset: Dataset, split: str, top_k: int, num_negatives: int,
                  exclude: set[str] | None = None) -> list[Triplet]:
    """Hard negatives from BM25 through the data stage's miner (with its false-negative guard), minus ``exclude``."""
    result = mine_negatives(retriever, dataset, split=split, top_k=top_k, num_negatives=num_negatives)
    return [t for t in result.triplets if not exclude or t.query_id not in exclude]


@dataclass
class DevSet:
    """Dev queries with their judgments and BM25 candidates: what the training evaluator reranks."""

    queries: dict[str, Query]
    qrels: Qrels
    run: Run
    docs: dict[str, Document]

    def __len__(self) -> int:
        return len(self.queries)


def build_dev_set(retriever: Retriever, dataset: Dataset, split: str, query_ids: Iterable[str] | None,
                  top_k: int) -> DevSet:
    """BM25 top-k for the dev queries; texts come from the dataset's corpus (same text the model trains on)."""
    qrels_all = dataset.split_qrels(split)
    wanted = set(query_ids) if query_ids is not None else set(qrels_all)
    queries = {q: v for q, v in dataset.split_queries(split).items() if q in wanted}
    run, _ = retriever.retrieve(queries, top_k)
    doc_ids = {d for docs in run.values() for d in docs}
    docs = {d: dataset.corpus[d] for d in doc_ids if d in dataset.corpus}
    return DevSet(queries=queries, qrels={q: qrels_all[q] for q in queries}, run=run, docs=docs)


def _negatives(t: Triplet, n: int) -> list[str]:
    """Exactly ``n`` negatives, cycling the mined ones when fewer were found (rows must be rectangular)."""
    if n == 0:
        return []
    if not t.negatives:
        return []
    return [t.negatives[i % len(t.negatives)] for i in range(n)]


def embed_dataset(triplets: Sequence[Triplet], num_negatives: int, seed: int):
    """Columns ``anchor, positive, negative_1..n`` for (Cached)MultipleNegativesRankingLoss.

    Triplets without any negative are dropped when negatives are asked for, since every row needs the same columns.
    """
    from datasets import Dataset as HFDataset

    rows = [t for t in triplets if num_negatives == 0 or t.negatives]
    if len(rows) < len(triplets):
        log.warning("dropped %d triplets without negatives", len(triplets) - len(rows))
    columns: dict[str, list[str]] = {"anchor": [t.query for t in rows], "positive": [t.positive for t in rows]}
    for i in range(num_negatives):
        columns[f"negative_{i + 1}"] = [_negatives(t, num_negatives)[i] for t in rows]
    return HFDataset.from_dict(columns).shuffle(seed=seed)


def pointwise_dataset(triplets: Sequence[Triplet], num_negatives: int, seed: int):
    """``query, document, label`` rows (1 for the positive, 0 for each negative) for BinaryCrossEntropyLoss."""
    from datasets import Dataset as HFDataset

    queries, documents, labels = [], [], []
    for t in triplets:
        queries.append(t.query)
        documents.append(t.positive)
        labels.append(1.0)
        for neg in t.negatives[:num_negatives]:
            queries.append(t.query)
            documents.append(neg)
            labels.append(0.0)
    return HFDataset.from_dict({"query": queries, "document": documents, "label": labels}).shuffle(seed=seed)


def listwise_dataset(triplets: Sequence[Triplet], num_negatives: int, seed: int):
    """``query, docs, labels`` rows (positive first, then negatives) for LambdaLoss / ListNetLoss."""
    from datasets import Dataset as HFDataset

    queries, docs, labels = [], [], []
    for t in triplets:
        negs = t.negatives[:num_negatives]
        queries.append(t.query)
        docs.append([t.positive, *negs])
        labels.append([1.0] + [0.0] * len(negs))
    return HFDataset.from_dict({"query": queries, "docs": docs, "labels": labels}).shuffle(seed=seed)
