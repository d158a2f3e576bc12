"""Fixtures for the data tests: a small real SciFact subset (train queries, their positives, distractors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from searchtune.data import Dataset, load_dataset


@pytest.fixture(scope="session")
def scifact(scifact_dir: Path) -> Dataset:
    return load_dataset(scifact_dir)


def make_subset(ds: Dataset, n_train: int, n_test: int, n_distractors: int) -> Dataset:
    """The first ``n_train``/``n_test`` judged queries, every document they judge, and the first
    ``n_distractors`` other documents of the corpus (real text, so BM25 has real competition)."""
    qrels = {}
    for split, n in (("train", n_train), ("test", n_test)):
        qids = list(ds.split_queries(split))[:n]
        qrels[split] = {qid: dict(ds.qrels[split][qid]) for qid in qids}
    judged = {d for split in qrels.values() for docs in split.values() for d in docs}
    keep = judged | set(list(ds.corpus)[:n_distractors])
    corpus = {d: ds.corpus[d] for d in ds.corpus if d in keep}
    queries = {q: ds.queries[q] for split in qrels.values() for q in split}
    return Dataset(name="scifact-mini", corpus=corpus, queries=queries, qrels=qrels, source=ds.source)


@pytest.fixture(scope="session")
def scifact_mini(scifact: Dataset) -> Dataset:
    return make_subset(scifact, n_train=24, n_test=8, n_distractors=400)
