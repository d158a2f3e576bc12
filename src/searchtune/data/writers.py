"""Write a :class:`Dataset` back out: the BEIR layout (any loader's output becomes BEIR) and graded-pairs JSONL.

A BEIR folder is written into a temporary sibling folder and renamed into place at the end, so readers never see a
folder with a corpus but no qrels. An existing folder is only replaced when asked.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

from searchtune.data.examples import dataset_to_graded_pairs, write_graded_pairs
from searchtune.data.records import Dataset, DatasetError, _natural_key


def write_beir(dataset: Dataset, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` for every split; returns the folder."""
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not overwrite:
        raise DatasetError(out_dir, "already exists; choose another folder or pass overwrite (--overwrite)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        with open(tmp / "corpus.jsonl", "w", encoding="utf-8") as handle:
            for doc_id in sorted(dataset.corpus, key=_natural_key):
                doc = dataset.corpus[doc_id]
                handle.write(json.dumps({"_id": doc.id, "title": doc.title, "text": doc.text}, ensure_ascii=False)
                             + "\n")
        with open(tmp / "queries.jsonl", "w", encoding="utf-8") as handle:
            for qid in sorted(dataset.queries, key=_natural_key):
                handle.write(json.dumps({"_id": qid, "text": dataset.queries[qid].text}, ensure_ascii=False) + "\n")
        (tmp / "qrels").mkdir()
        for split, qrels in dataset.qrels.items():
            with open(tmp / "qrels" / f"{split}.tsv", "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
                writer.writerow(["query-id", "corpus-id", "score"])
                for qid in sorted(qrels, key=_natural_key):
                    for did, grade in qrels[qid].items():
                        writer.writerow([qid, did, grade])
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def write_split_pairs(dataset: Dataset, split: str, path: str | Path) -> int:
    """Write one split's judgments as graded-pairs JSONL (with ids and full document text)."""
    return write_graded_pairs(dataset_to_graded_pairs(dataset, split), path)
