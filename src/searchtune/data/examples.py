"""Training examples: graded (query, document, label) pairs and (query, positive, negatives) triplets, as JSONL.

These are the two shapes training consumes. Readers check every record and fail with the file, line and field of
the first bad one (or collect all problems with ``errors=[]``, which is what ``searchtune data validate`` does), so
a typo in line 40,000 is found before a training job starts rather than halfway through it. Writers are atomic:
they write a temporary file beside the target and rename it, so a crash never leaves a half-written file under the
final name.

Graded pairs, one JSON object a line::

    {"query": "...", "document": "...", "label": 2}            # integer or float label
    {"query": "...", "doc_id": "D17", "label": 0.5}            # text looked up in a corpus
    optional: "query_id", and "doc_id" next to "document"

Triplets, one JSON object a line::

    {"query": "...", "positive": "...", "negatives": ["...", "..."]}
    optional: "query_id", "positive_id", "negative_ids"
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from searchtune.data.loaders import iter_jsonl
from searchtune.data.records import Dataset, DatasetError, Document, Query
from searchtune.storage import atomic_writer

ExampleFormat = Literal["graded-pairs", "triplets"]


@dataclass(slots=True)
class GradedPair:
    """One judged (query, document) pair. ``label`` is a grade (0 = not relevant) or a float score in [0, 1]."""

    query: str
    document: str
    label: float
    query_id: str | None = None
    doc_id: str | None = None

    def to_dict(self) -> dict:
        record: dict = {}
        if self.query_id is not None:
            record["query_id"] = self.query_id
        record["query"] = self.query
        if self.doc_id is not None:
            record["doc_id"] = self.doc_id
        record["document"] = self.document
        record["label"] = int(self.label) if float(self.label).is_integer() else self.label
        return record


@dataclass(slots=True)
class Triplet:
    """A query, one relevant passage and passages that are not relevant (hard negatives first)."""

    query: str
    positive: str
    negatives: list[str]
    query_id: str | None = None
    positive_id: str | None = None
    negative_ids: list[str] | None = field(default=None)

    def to_dict(self) -> dict:
        record: dict = {}
        if self.query_id is not None:
            record["query_id"] = self.query_id
        record["query"] = self.query
        if self.positive_id is not None:
            record["positive_id"] = self.positive_id
        record["positive"] = self.positive
        if self.negative_ids is not None:
            record["negative_ids"] = list(self.negative_ids)
        record["negatives"] = list(self.negatives)
        return record


# ---------------------------------------------------------------- field checks


def _report(errors: list[DatasetError] | None, error: DatasetError) -> None:
    if errors is None:
        raise error
    errors.append(error)


def _text(obj: dict, key: str, path: Path, lineno: int, required: bool = True) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise DatasetError(path, "missing required field", line=lineno, field=key)
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise DatasetError(path, f"must be a string, got {type(value).__name__}", line=lineno, field=key)
    if required and not value.strip():
        raise DatasetError(path, "must not be empty", line=lineno, field=key)
    return value


def _ident(obj: dict, key: str, path: Path, lineno: int) -> str | None:
    """Ids may be written as strings or integers; anything else is a mistake worth reporting."""
    if key not in obj or obj[key] is None:
        return None
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DatasetError(path, f"must be a string or integer id, got {type(value).__name__}", line=lineno, field=key)
    value = str(value)
    if not value.strip():
        raise DatasetError(path, "must not be empty", line=lineno, field=key)
    return value


def _label(obj: dict, path: Path, lineno: int) -> float:
    if "label" not in obj:
        raise DatasetError(path, "missing required field", line=lineno, field="label")
    value = obj["label"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatasetError(path, f"must be a number, got {type(value).__name__} {value!r}", line=lineno, field="label")
    if not math.isfinite(value):
        raise DatasetError(path, f"must be a finite number, got {value!r}", line=lineno, field="label")
    if value < 0:
        raise DatasetError(path, f"must not be negative, got {value!r}", line=lineno, field="label")
    return float(value)


def _string_list(obj: dict, key: str, path: Path, lineno: int, required: bool = True) -> list[str] | None:
    if key not in obj or obj[key] is None:
        if required:
            raise DatasetError(path, "missing required field", line=lineno, field=key)
        return None
    value = obj[key]
    if not isinstance(value, list):
        raise DatasetError(path, f"must be a list of strings, got {type(value).__name__}", line=lineno, field=key)
    for position, item in enumerate(value):
        if not isinstance(item, str):
            raise DatasetError(path, f"item {position} must be a string, got {type(item).__name__}", line=lineno,
                               field=key)
    return list(value)


# ---------------------------------------------------------------- readers


def read_graded_pairs(path: str | Path, corpus: Mapping[str, Document] | None = None,
                      errors: list[DatasetError] | None = None) -> list[GradedPair]:
    """Read a graded-pairs JSONL file.

    A record may give the document text (``document``) or only its id (``doc_id``); ids are resolved against
    ``corpus`` (a ``corpus.jsonl`` beside the file is used by :func:`load_examples`). Pass ``errors=[]`` to collect
    every bad record instead of stopping at the first.
    """
    path = Path(path)
    pairs: list[GradedPair] = []
    for lineno, obj in iter_jsonl(path, errors):
        try:
            query = _text(obj, "query", path, lineno)
            query_id = _ident(obj, "query_id", path, lineno)
            doc_id = _ident(obj, "doc_id", path, lineno)
            document = _text(obj, "document", path, lineno, required=False)
            if document is None:
                if doc_id is None:
                    raise DatasetError(path, "missing required field (or 'doc_id')", line=lineno, field="document")
                if corpus is None:
                    raise DatasetError(path, f"gives only doc_id '{doc_id}' and no corpus was provided to look it up",
                                       line=lineno, field="document")
                if doc_id not in corpus:
                    raise DatasetError(path, f"document '{doc_id}' is not in the corpus", line=lineno, field="doc_id")
                document = corpus[doc_id].full_text
            label = _label(obj, path, lineno)
        except DatasetError as exc:
            _report(errors, exc)
            continue
        pairs.append(GradedPair(query=query, document=document, label=label, query_id=query_id, doc_id=doc_id))
    return pairs


def read_triplets(path: str | Path, errors: list[DatasetError] | None = None) -> list[Triplet]:
    """Read a triplets JSONL file (``negatives`` may be empty: in-batch negatives still train)."""
    path = Path(path)
    triplets: list[Triplet] = []
    for lineno, obj in iter_jsonl(path, errors):
        try:
            query = _text(obj, "query", path, lineno)
            positive = _text(obj, "positive", path, lineno)
            negatives = _string_list(obj, "negatives", path, lineno)
            for position, negative in enumerate(negatives):
                if not negative.strip():
                    raise DatasetError(path, f"item {position} is empty", line=lineno, field="negatives")
            negative_ids = _string_list(obj, "negative_ids", path, lineno, required=False)
            if negative_ids is not None and len(negative_ids) != len(negatives):
                raise DatasetError(path, f"has {len(negative_ids)} ids for {len(negatives)} negatives", line=lineno,
                                   field="negative_ids")
            triplet = Triplet(query=query, positive=positive, negatives=negatives,
                              query_id=_ident(obj, "query_id", path, lineno),
                              positive_id=_ident(obj, "positive_id", path, lineno), negative_ids=negative_ids)
        except DatasetError as exc:
            _report(errors, exc)
            continue
        triplets.append(triplet)
    return triplets


def detect_format(path: str | Path) -> ExampleFormat | None:
    """Which example format a JSONL file holds, from its first record (None: not an examples file)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    return None
                if not isinstance(obj, dict):
                    return None
                if "positive" in obj or "negatives" in obj:
                    return "triplets"
                if "label" in obj and ("document" in obj or "doc_id" in obj):
                    return "graded-pairs"
                return None
    except (OSError, UnicodeDecodeError):
        return None
    return None


def load_examples(path: str | Path, corpus: Mapping[str, Document] | None = None,
                  errors: list[DatasetError] | None = None) -> tuple[ExampleFormat, list[GradedPair] | list[Triplet]]:
    """Read either format, detected from the file; doc ids resolve against ``corpus.jsonl`` beside it if present."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt is None:
        raise DatasetError(path, "not a graded-pairs ({query, document|doc_id, label}) or triplets "
                                 "({query, positive, negatives}) JSONL file")
    if fmt == "triplets":
        return fmt, read_triplets(path, errors=errors)
    if corpus is None and (path.parent / "corpus.jsonl").is_file() and path.name != "corpus.jsonl":
        corpus = _LazyCorpus(path.parent / "corpus.jsonl")
    return fmt, read_graded_pairs(path, corpus=corpus, errors=errors)


class _LazyCorpus(Mapping[str, Document]):
    """A corpus file read only when a record actually refers to a document by id (files with text never pay)."""

    def __init__(self, path: Path):
        self.path = path
        self._docs: dict[str, Document] | None = None

    def _load(self) -> dict[str, Document]:
        if self._docs is None:
            from searchtune.data.loaders import read_corpus_jsonl

            self._docs = read_corpus_jsonl(self.path)
        return self._docs

    def __getitem__(self, key: str) -> Document:
        return self._load()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


# ---------------------------------------------------------------- writers


def write_jsonl_atomic(records: Iterable[dict], path: str | Path) -> int:
    """Write dicts as JSONL atomically (storage.atomic_writer: unique temp name, fsync, rename)."""
    count = 0
    with atomic_writer(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_graded_pairs(pairs: Iterable[GradedPair], path: str | Path) -> int:
    """Write graded pairs atomically; returns the number written."""
    return write_jsonl_atomic((pair.to_dict() for pair in pairs), path)


def write_triplets(triplets: Iterable[Triplet], path: str | Path) -> int:
    """Write triplets atomically; returns the number written."""
    return write_jsonl_atomic((triplet.to_dict() for triplet in triplets), path)


def append_records(handle: IO[str], records: Iterable[GradedPair | Triplet]) -> None:
    """Append examples to an open JSONL file and make them durable (used by resumable mining)."""
    for record in records:
        handle.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def triplets_to_graded_pairs(triplets: Iterable[Triplet]) -> list[GradedPair]:
    """Flatten triplets to pairs: the positive with label 1, each negative with label 0 (duplicates dropped)."""
    pairs: list[GradedPair] = []
    seen: set[tuple[str, str]] = set()
    for t in triplets:
        negative_ids = t.negative_ids or [None] * len(t.negatives)
        for text, doc_id, label in [(t.positive, t.positive_id, 1.0), *((n, i, 0.0) for n, i in zip(t.negatives,
                                                                                                  negative_ids))]:
            key = (t.query_id or t.query, doc_id or text)
            if key in seen:
                continue
            seen.add(key)
            pairs.append(GradedPair(query=t.query, document=text, label=label, query_id=t.query_id, doc_id=doc_id))
    return pairs


# ---------------------------------------------------------------- to the common representation


def _stable_id(prefix: str, text: str) -> str:
    import hashlib

    return prefix + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def examples_to_dataset(examples: list[GradedPair] | list[Triplet], name: str, split: str = "train",
                        source: str = "") -> Dataset:
    """Turn pairs or triplets into a :class:`Dataset` (the one representation validation, splitting and the BEIR
    writer work on). Missing ids are derived from the text, so identical texts share an id; triplet positives get
    grade 1 and negatives grade 0. Float labels that are not whole numbers cannot be qrels grades and are refused.
    """

    corpus: dict[str, Document] = {}
    queries: dict[str, Query] = {}
    qrels: dict[str, dict[str, int]] = {}

    def add(query: str, query_id: str | None, text: str, doc_id: str | None, grade: int) -> None:
        qid = query_id or _stable_id("q", query)
        did = doc_id or _stable_id("d", text)
        queries.setdefault(qid, Query(id=qid, text=query))
        corpus.setdefault(did, Document(id=did, text=text))
        judged = qrels.setdefault(qid, {})
        judged[did] = max(judged.get(did, grade), grade)

    for position, example in enumerate(examples, 1):
        if isinstance(example, Triplet):
            add(example.query, example.query_id, example.positive, example.positive_id, 1)
            ids = example.negative_ids or [None] * len(example.negatives)
            for text, doc_id in zip(example.negatives, ids):
                add(example.query, example.query_id, text, doc_id, 0)
        else:
            if not float(example.label).is_integer():
                raise DatasetError(source or name, f"label {example.label} of example {position} is not a whole "
                                   "number; float labels stay in graded-pairs JSONL (BEIR/TREC qrels need integers)",
                                   field="label")
            add(example.query, example.query_id, example.document, example.doc_id, int(example.label))
    return Dataset(name=name, corpus=corpus, queries=queries, qrels={split: qrels}, source=source)


def dataset_to_graded_pairs(dataset: Dataset, split: str) -> list[GradedPair]:
    """Every judged pair of ``split`` whose query and document exist, with the document's full text."""
    pairs: list[GradedPair] = []
    for qid, judged in dataset.split_qrels(split).items():
        query = dataset.queries.get(qid)
        if query is None:
            continue
        for did, grade in judged.items():
            doc = dataset.corpus.get(did)
            if doc is not None:
                pairs.append(GradedPair(query=query.text, document=doc.full_text, label=float(grade), query_id=qid,
                                        doc_id=did))
    return pairs
