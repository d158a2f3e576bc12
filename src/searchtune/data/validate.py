"""Check relevance data before anything trains on it: schema errors first, then statistics and warnings.

Errors are things that make the data unusable or contradictory (unparseable lines, missing fields, a triplet whose
positive is also one of its negatives); they fail ``searchtune data validate``. Warnings are things worth knowing
that are common in real collections (judged documents missing from the corpus, duplicate texts, queries without a
relevant document, a query judged in two splits); they are printed but do not fail unless ``--strict``.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from searchtune.data.examples import GradedPair, Triplet, detect_format, load_examples
from searchtune.data.loaders import load_dataset
from searchtune.data.records import Dataset, DatasetError

#: How many example ids a warning lists before "and N more".
EXAMPLES_SHOWN = 5


@dataclass
class ValidationReport:
    path: str
    layout: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"path": self.path, "layout": self.layout, "ok": self.ok, "errors": self.errors,
                "warnings": self.warnings, "stats": self.stats}


def validate_path(path: str | Path, max_errors: int = 50) -> ValidationReport:
    """Validate a dataset folder (BEIR, JSONL + TREC qrels, Cranfield, TREC text) or a pairs/triplets JSONL file."""
    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".jsonl" and detect_format(path) is not None:
        return _validate_examples(path, max_errors)
    if path.is_file() and path.suffix == ".jsonl" and not path.read_bytes().strip():
        return ValidationReport(path=str(path), layout="unknown", errors=[f"{path}: no records (the file is empty)"])
    report = ValidationReport(path=str(path), layout=_layout(path))
    try:
        dataset = load_dataset(path)
    except DatasetError as exc:
        report.errors.append(str(exc))
        return report
    report.stats, report.warnings = dataset_stats(dataset)
    report.errors += emptiness_errors(dataset, report.layout)
    return report


#: Where each layout keeps its corpus, queries and judgments (for messages that name the file to fix).
_PARTS = {"beir": ("corpus.jsonl", "queries.jsonl", "qrels/"), "jsonl+trec-qrels": ("corpus.jsonl", "queries.jsonl",
                                                                                   "the qrels file"),
          "cranfield": ("cran.all.1400", "cran.qry", "cranqrel"), "trec-text": ("the .trec documents",
                                                                                "the query topics", "the qrels file")}


def emptiness_errors(dataset: Dataset, layout: str) -> list[str]:
    """A dataset without documents, queries or judgments cannot train or evaluate anything; an empty
    ``corpus.jsonl`` used to validate and be staged as a complete dataset with 0 documents."""
    corpus, queries, qrels = _PARTS.get(layout, ("the corpus", "the queries", "the judgments"))
    root = dataset.source or dataset.name
    errors = []
    if not dataset.corpus:
        errors.append(f"{root}/{corpus}: no documents (the corpus is empty)")
    if not dataset.queries:
        errors.append(f"{root}/{queries}: no queries")
    if not any(dataset.qrels.values()):
        errors.append(f"{root}/{qrels}: no relevance judgments in any split")
    return errors


def discover_datasets(path: str | Path, depth: int = 2) -> list[Path]:
    """``path`` itself when it is a dataset or examples file, else the datasets in its subfolders (down to
    ``depth`` levels), so ``validate /data/collections`` checks every collection under it."""
    path = Path(path).expanduser()
    if path.is_file() or _layout(path) != "unknown" or depth == 0 or not path.is_dir():
        return [path]
    found: list[Path] = []
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found += [p for p in discover_datasets(child, depth - 1) if _layout(p) != "unknown" or p.is_file()]
    return found or [path]


def _layout(path: Path) -> str:
    root = path.parent if path.is_file() else path
    if (root / "corpus.jsonl").is_file():
        return "beir" if (root / "qrels").is_dir() else "jsonl+trec-qrels"
    if (root / "cran.all.1400").is_file():
        return "cranfield"
    if list(root.glob("corpus/*.trec")) or list(root.glob("*.trec")):
        return "trec-text"
    return "unknown"


# ---------------------------------------------------------------- datasets


def _summary(values: list[int | float]) -> dict:
    if not values:
        return {"min": 0, "mean": 0.0, "median": 0, "max": 0}
    return {"min": min(values), "mean": round(statistics.fmean(values), 3), "median": statistics.median(values),
            "max": max(values)}


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:EXAMPLES_SHOWN])
    return shown + (f" and {len(items) - EXAMPLES_SHOWN} more" if len(items) > EXAMPLES_SHOWN else "")


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _duplicate_groups(texts: dict[str, str]) -> list[list[str]]:
    """Groups of ids whose (whitespace/case-normalised) texts are identical."""
    by_text: dict[str, list[str]] = defaultdict(list)
    for item_id, text in texts.items():
        by_text[_normal(text)].append(item_id)
    return [ids for ids in by_text.values() if len(ids) > 1]


def dataset_stats(dataset: Dataset) -> tuple[dict, list[str]]:
    """Statistics and warnings for a loaded dataset (see the module docstring for what counts as a warning)."""
    warnings: list[str] = []
    stats: dict = {"name": dataset.name, "documents": len(dataset.corpus), "queries": len(dataset.queries),
                   "splits": {}}
    empty_docs = sorted(d.id for d in dataset.corpus.values() if not d.text.strip() and not d.title.strip())
    empty = set(empty_docs)
    if empty_docs:
        warnings.append(f"{len(empty_docs)} documents have no text: {_listed(empty_docs)}")
    dup_docs = _duplicate_groups({d.id: d.full_text for d in dataset.corpus.values() if d.id not in empty})
    stats["duplicate_documents"] = sum(len(g) - 1 for g in dup_docs)
    if dup_docs:
        warnings.append(f"{stats['duplicate_documents']} documents repeat another's text "
                        f"({len(dup_docs)} groups, e.g. {_listed(['='.join(g) for g in dup_docs])})")
    dup_queries = _duplicate_groups({q.id: q.text for q in dataset.queries.values()})
    stats["duplicate_queries"] = sum(len(g) - 1 for g in dup_queries)
    if dup_queries:
        warnings.append(f"{stats['duplicate_queries']} queries repeat another's text "
                        f"(e.g. {_listed(['='.join(g) for g in dup_queries])})")

    for split in dataset.splits:
        qrels = dataset.qrels[split]
        labels = Counter(grade for judged in qrels.values() for grade in judged.values())
        positives = [sum(1 for g in judged.values() if g > 0) for judged in qrels.values()]
        missing_docs = sorted({did for judged in qrels.values() for did in judged if did not in dataset.corpus})
        missing_queries = sorted(qid for qid in qrels if qid not in dataset.queries)
        no_positive = sorted(qid for qid, judged in qrels.items() if not any(g > 0 for g in judged.values()))
        stats["splits"][split] = {
            "queries": len(qrels), "judged_pairs": sum(len(j) for j in qrels.values()),
            "positives_per_query": _summary(positives),
            "label_histogram": {str(k): labels[k] for k in sorted(labels)},
            "missing_documents": len(missing_docs), "missing_queries": len(missing_queries),
            "queries_without_positive": len(no_positive),
        }
        if not qrels:
            warnings.append(f"split '{split}' has no judgments")
        if missing_docs:
            warnings.append(f"{split}: {len(missing_docs)} judged documents are not in the corpus: {_listed(missing_docs)}")
        if missing_queries:
            warnings.append(f"{split}: {len(missing_queries)} judged queries are not in the query file: "
                            f"{_listed(missing_queries)}")
        if no_positive:
            warnings.append(f"{split}: {len(no_positive)} queries have no relevant (grade > 0) document: "
                            f"{_listed(no_positive)}")

    stats["split_leaks"] = _split_leaks(dataset, warnings)
    return stats, warnings


def _split_leaks(dataset: Dataset, warnings: list[str]) -> int:
    """Queries judged in more than one split, by id or by identical text: evaluation would see training queries."""
    splits_of: dict[str, set[str]] = defaultdict(set)
    for split, qrels in dataset.qrels.items():
        for qid in qrels:
            key = _normal(dataset.queries[qid].text) if qid in dataset.queries else f"id:{qid}"
            splits_of[key].add(split)
    leaks = {key: sorted(s) for key, s in splits_of.items() if len(s) > 1}
    if leaks:
        shown = [f"'{key[:40]}' ({'/'.join(s)})" for key, s in list(leaks.items())[:EXAMPLES_SHOWN]]
        warnings.append(f"{len(leaks)} queries leak across splits: {', '.join(shown)}"
                        + (f" and {len(leaks) - EXAMPLES_SHOWN} more" if len(leaks) > EXAMPLES_SHOWN else ""))
    return len(leaks)


# ---------------------------------------------------------------- example files


def _label_histogram(labels: list[float]) -> dict[str, int]:
    if all(float(v).is_integer() for v in labels):
        counts = Counter(int(v) for v in labels)
        return {str(k): counts[k] for k in sorted(counts)}
    edges = [i / 10 for i in range(11)] if max(labels) <= 1.0 else None
    if edges is None:
        low, high = min(labels), max(labels)
        edges = [low + (high - low) * i / 10 for i in range(11)]
    counts = Counter(min(sum(1 for e in edges[1:-1] if v >= e), 9) for v in labels)
    return {f"[{edges[i]:.2g},{edges[i + 1]:.2g}{']' if i == 9 else ')'}": counts[i] for i in range(10) if counts[i]}


def _validate_examples(path: Path, max_errors: int) -> ValidationReport:
    errors: list[DatasetError] = []
    try:
        fmt, examples = load_examples(path, errors=errors)
    except DatasetError as exc:
        return ValidationReport(path=str(path), layout="unknown", errors=[str(exc)])
    report = ValidationReport(path=str(path), layout=fmt)
    report.errors = [str(e) for e in errors[:max_errors]]
    if len(errors) > max_errors:
        report.errors.append(f"... and {len(errors) - max_errors} more errors")
    if fmt == "graded-pairs":
        report.stats = _pair_stats(examples, report.warnings)  # type: ignore[arg-type]
    else:
        report.stats = _triplet_stats(examples, report.warnings, report.errors)  # type: ignore[arg-type]
    report.stats["invalid_records"] = len(errors)
    if not examples and not errors:
        report.errors.append(f"{path}: no {fmt} records (the file is empty)")
    return report


def _pair_stats(pairs: list[GradedPair], warnings: list[str]) -> dict:
    by_query: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for pair in pairs:
        by_query[pair.query_id or pair.query][pair.doc_id or _normal(pair.document)].append(pair.label)
    repeated = sum(len(v) - 1 for docs in by_query.values() for v in docs.values() if len(v) > 1)
    conflicting = [q for q, docs in by_query.items() if any(len(set(v)) > 1 for v in docs.values())]
    no_positive = [q for q, docs in by_query.items() if not any(max(v) > 0 for v in docs.values())]
    if repeated:
        warnings.append(f"{repeated} pairs repeat an earlier (query, document) pair")
    if conflicting:
        warnings.append(f"{len(conflicting)} queries give one document different labels: {_listed(conflicting)}")
    if no_positive:
        warnings.append(f"{len(no_positive)} queries have no pair with label > 0: {_listed(no_positive)}")
    positives = [sum(1 for v in docs.values() if max(v) > 0) for docs in by_query.values()]
    return {"pairs": len(pairs), "queries": len(by_query),
            "documents": len({p.doc_id or _normal(p.document) for p in pairs}),
            "positives_per_query": _summary(positives),
            "label_histogram": _label_histogram([p.label for p in pairs]) if pairs else {},
            "duplicate_pairs": repeated}


def _triplet_stats(triplets: list[Triplet], warnings: list[str], errors: list[str]) -> dict:
    negatives = [len(t.negatives) for t in triplets]
    empty = sum(1 for n in negatives if n == 0)
    contradictory = [i for i, t in enumerate(triplets, 1)
                     if _normal(t.positive) in {_normal(n) for n in t.negatives}]
    repeated_negatives = sum(1 for t in triplets if len({_normal(n) for n in t.negatives}) < len(t.negatives))
    seen = Counter((_normal(t.query), _normal(t.positive)) for t in triplets)
    duplicates = sum(c - 1 for c in seen.values())
    if contradictory:
        errors.append(f"{len(contradictory)} triplets list their positive among the negatives "
                      f"(records {_listed([str(i) for i in contradictory])})")
    if empty:
        warnings.append(f"{empty} triplets have no negatives (only in-batch negatives will train them)")
    if repeated_negatives:
        warnings.append(f"{repeated_negatives} triplets repeat a negative")
    if duplicates:
        warnings.append(f"{duplicates} triplets repeat an earlier (query, positive)")
    return {"triplets": len(triplets), "queries": len({t.query_id or _normal(t.query) for t in triplets}),
            "negatives_per_triplet": _summary(negatives), "duplicate_triplets": duplicates}
