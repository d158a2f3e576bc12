"""Close the loop: turn a judgment list (``NAME`` or ``NAME@VERSION``) into the dataset the trainer already reads.

The list holds grades and query texts, not documents, so it is laid over the dataset it was judged on (recorded in
the list, or given with ``--dataset``): the training split's judgments become the dataset's, overridden by the
list's grades (a rater's 0 takes a document out), plus queries typed in the workbench. Queries that belong to
another split of the dataset (test, dev) are left out, so judging test queries never leaks them into training.
What was used -- list name, version, sha256 of its qrels -- goes into the training record, which the registry keeps
with the model; the workbench shows it (lineage.py).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from searchtune.data import Dataset, load_dataset
from searchtune.data.records import DatasetError, Query
from searchtune.storage import sha256_bytes
from searchtune.workbench.judgments import JudgmentError, JudgmentList, parse_ref, trec_qrels

log = logging.getLogger(__name__)


def list_dataset_dir(ref: str, store: str | None = None) -> Path | None:
    """The dataset folder a list was judged on, if it recorded one."""
    name, _ = parse_ref(ref)
    folder = JudgmentList(name, store).meta().get("dataset")
    return Path(folder) if folder else None


def apply_judgments(dataset: Dataset, ref: str, split: str, store: str | None = None
                    ) -> tuple[Dataset, dict[str, Any]]:
    """``dataset`` with split ``split`` = its judgments overlaid by list ``ref``'s; and the record of what was used."""
    name, version = parse_ref(ref)
    judgments = JudgmentList(name, store)
    meta = judgments.meta()
    version = meta["version"] if version is None else version
    listed = judgments.qrels(version)
    texts = judgments.query_texts()
    elsewhere = {q for s, qrels in dataset.qrels.items() if s != split for q in qrels}
    kept = {q: docs for q, docs in listed.items() if q not in elsewhere}
    if len(kept) < len(listed):
        log.warning("judgment list %s@%d: %d of its queries belong to another split of %s and are not trained on",
                    name, version, len(listed) - len(kept), dataset.name)
    merged = {q: dict(d) for q, d in dataset.qrels.get(split, {}).items()}
    for qid, docs in kept.items():
        merged.setdefault(qid, {}).update(docs)
    queries = dict(dataset.queries)
    for qid in kept:
        if qid not in queries:
            if qid not in texts:
                raise DatasetError(judgments.qrels_path(), f"query {qid!r} has no text in the list or the dataset")
            queries[qid] = Query(qid, texts[qid])
    unknown = sorted({d for docs in kept.values() for d in docs} - set(dataset.corpus))
    if unknown:
        raise DatasetError(judgments.qrels_path(), f"{len(unknown)} judged documents are not in the dataset's corpus "
                                                   f"(first: {unknown[0]!r}); was the list judged on another index?")
    info = {"name": name, "version": version, "store": judgments.store, "queries": len(kept),
            "qrels_sha256": sha256_bytes(trec_qrels(listed).encode())}
    return replace(dataset, queries=queries, qrels={**dataset.qrels, split: merged}), info


def load_for_training(ref: str, dataset_dir: Path | None, split: str, store: str | None = None
                      ) -> tuple[Path, Dataset, dict[str, Any]]:
    """What ``searchtune train --judgments`` needs: the dataset folder, the overlaid dataset, the list record."""
    try:
        folder = dataset_dir or list_dataset_dir(ref, store)
    except JudgmentError as exc:
        raise DatasetError(ref, str(exc)) from None
    if folder is None:
        raise DatasetError(ref, "the judgment list names no dataset; give --dataset DIR (the corpus it was judged on)")
    try:
        dataset, info = apply_judgments(load_dataset(folder), ref, split, store)
    except JudgmentError as exc:
        raise DatasetError(ref, str(exc)) from None
    return folder, dataset, info


def write_judged_dataset(ref: str, dataset_dir: Path | None, out_dir: Path, split: str = "train",
                         store: str | None = None) -> tuple[Path, dict[str, Any]]:
    """For the quickstart (``--judgments``): the overlaid dataset written as a BEIR folder under ``out_dir``, which
    the quickstart then runs on like any dataset, and the list record that goes into its training card."""
    from searchtune.data.writers import write_beir

    _, dataset, info = load_for_training(ref, dataset_dir, split, store)
    return write_beir(dataset, out_dir, overwrite=True), info
