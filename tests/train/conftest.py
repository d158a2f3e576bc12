"""A small real SciFact subset (train/test queries, their judged documents, real distractors) in its own index."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from searchtune.data import Dataset, load_dataset
from searchtune.data.split import sample_subset
from searchtune.search.indexing import build_index

#: Kept short so every training test stays within seconds per step on 2 shared cores.
TINY = ["--max-length", "32", "--batch-size", "4", "--precision", "fp32"]


def write_beir(ds: Dataset, root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl", "w") as out:
        for doc in ds.corpus.values():
            out.write(json.dumps({"_id": doc.id, "title": doc.title, "text": doc.text}) + "\n")
    with open(root / "queries.jsonl", "w") as out:
        for query in ds.queries.values():
            out.write(json.dumps({"_id": query.id, "text": query.text}) + "\n")
    for split, qrels in ds.qrels.items():
        with open(root / "qrels" / f"{split}.tsv", "w") as out:
            out.write("query-id\tcorpus-id\tscore\n")
            for qid, docs in qrels.items():
                for did, grade in docs.items():
                    out.write(f"{qid}\t{did}\t{grade}\n")
    return root


@pytest.fixture(scope="session")
def tiny_dataset(scifact_dir: Path, tmp_path_factory) -> Path:
    """16 train and 6 test SciFact queries with 150 distractor documents, written as a BEIR folder."""
    subset = sample_subset(load_dataset(scifact_dir), {"train": 16, "test": 6}, distractors=150, name="scifact-tiny")
    return write_beir(subset, tmp_path_factory.mktemp("scifact-tiny"))


@pytest.fixture(scope="session")
def tiny_index(es, tiny_dataset: Path):
    name = f"t-train-{uuid.uuid4().hex[:8]}"
    ds = load_dataset(tiny_dataset)
    build_index(es, name, ds.corpus.values(), total=len(ds.corpus), recreate=True)
    yield name
    es.indices.delete(index=f"{name}-*", ignore_unavailable=True)


@pytest.fixture(scope="session")
def triplets_file(es, tiny_dataset: Path, tiny_index: str, tmp_path_factory) -> Path:
    """Triplets mined with bm25_search directly (independent of the mining module), as JSONL."""
    from searchtune.search.retrieval import bm25_search

    ds = load_dataset(tiny_dataset)
    queries = ds.split_queries("train")
    run, _ = bm25_search(es, tiny_index, queries, top_k=10)
    path = tmp_path_factory.mktemp("triplets") / "triplets.jsonl"
    with open(path, "w") as out:
        for qid, query in queries.items():
            relevant = {d for d, g in ds.qrels["train"][qid].items() if g > 0}
            negatives = [ds.corpus[d].full_text for d in sorted(run[qid], key=run[qid].get, reverse=True)
                         if d not in relevant][:3]
            for did in sorted(relevant):
                out.write(json.dumps({"query_id": qid, "query": query.text, "positive": ds.corpus[did].full_text,
                                      "negatives": negatives}) + "\n")
    return path
