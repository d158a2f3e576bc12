"""Split judgments by query, so no query (or a copy of its text) is both trained on and evaluated on.

All judgments of a query go to one split. Queries whose texts are identical after lower-casing and whitespace
normalisation are grouped and move together, because a duplicated query under two ids leaks just as much as one id
in two splits. The assignment is a seeded shuffle of the groups sorted by a stable key, so the same data, sizes and
seed give the same split on every machine and Python version.

Sizes are given per split as a fraction (``0.1``), a count of queries (``100``) or ``"rest"`` (whatever is left;
at most one split). Without ``"rest"`` the sizes must cover every query, e.g. ``{"train": 0.9, "dev": 0.1}``.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from searchtune.data.examples import GradedPair, Triplet
from searchtune.data.records import Dataset, DatasetError, _natural_key

Size = float | int | str
K = TypeVar("K", bound=Hashable)
E = TypeVar("E", GradedPair, Triplet)


def parse_sizes(spec: str) -> dict[str, Size]:
    """``"train=0.9,dev=0.1"`` or ``"dev=100,train=rest"`` -> a sizes mapping (order kept)."""
    sizes: dict[str, Size] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"bad split size {part!r}: expected NAME=FRACTION, NAME=COUNT or NAME=rest")
        if value == "rest":
            sizes[name] = "rest"
        elif value.isdigit():
            sizes[name] = int(value)
        else:
            try:
                sizes[name] = float(value)
            except ValueError:
                raise ValueError(f"bad split size {part!r}: {value!r} is not a fraction, a count or 'rest'") from None
    if not sizes:
        raise ValueError("no split sizes given")
    return sizes


def _targets(total: int, sizes: Mapping[str, Size]) -> dict[str, int]:
    """Number of queries each split should get (largest-remainder rounding for fractions)."""
    if not sizes:
        raise ValueError("no split sizes given")
    rest = [name for name, size in sizes.items() if size == "rest"]
    if len(rest) > 1:
        raise ValueError(f"only one split may be 'rest', got {', '.join(rest)}")
    exact: dict[str, float] = {}
    for name, size in sizes.items():
        if size == "rest":
            continue
        if isinstance(size, bool) or not isinstance(size, (int, float)):
            raise ValueError(f"size of split '{name}' must be a fraction, a count or 'rest', got {size!r}")
        if isinstance(size, float):
            if not 0.0 < size <= 1.0:
                raise ValueError(f"fraction for split '{name}' must be in (0, 1], got {size}")
            exact[name] = size * total
        else:
            if size < 1:
                raise ValueError(f"count for split '{name}' must be at least 1, got {size}")
            exact[name] = float(size)
    targets = {name: int(value) for name, value in exact.items()}
    fractions_only = not rest and all(isinstance(sizes[n], float) for n in exact)
    if fractions_only:
        if abs(sum(sizes[n] for n in exact) - 1.0) > 1e-6:  # type: ignore[misc]
            raise ValueError(f"fractions must add up to 1 (got {sum(sizes[n] for n in exact):g}); "  # type: ignore[misc]
                             "or give one split as 'rest'")
        short = total - sum(targets.values())
        for name in sorted(exact, key=lambda n: exact[n] - targets[n], reverse=True)[:short]:
            targets[name] += 1
    else:
        for name in exact:
            if isinstance(sizes[name], float):
                targets[name] = round(exact[name])
    assigned = sum(targets.values())
    if rest:
        if assigned > total:
            raise ValueError(f"sizes ask for {assigned} queries but only {total} are available")
        targets[rest[0]] = total - assigned
    elif assigned != total:
        raise ValueError(f"sizes cover {assigned} of {total} queries; make them add up or give one split as 'rest'")
    empty = [name for name in sizes if targets[name] == 0]
    if empty:
        raise ValueError(f"split(s) {', '.join(empty)} would get no queries out of {total}")
    return {name: targets[name] for name in sizes}


def assign_groups(groups: Mapping[K, int], sizes: Mapping[str, Size], seed: int) -> dict[K, str]:
    """Assign whole groups (key -> number of queries in it) to splits, filling splits in the order given."""
    targets = _targets(sum(groups.values()), sizes)
    order = sorted(groups, key=lambda k: str(k))
    random.Random(seed).shuffle(order)
    names = list(targets)
    assignment: dict[K, str] = {}
    current, filled = 0, 0
    for key in order:
        while current < len(names) - 1 and filled >= targets[names[current]]:
            current, filled = current + 1, 0
        assignment[key] = names[current]
        filled += groups[key]
    return assignment


def _text_key(text: str) -> str:
    return " ".join(text.lower().split())


def split_by_query(dataset: Dataset, sizes: Mapping[str, Size] | None = None, seed: int = 42,
                   source_split: str = "train", *, fractions: Mapping[str, float] | None = None,
                   counts: Mapping[str, int] | None = None) -> Dataset:
    """Return a copy of ``dataset`` where ``source_split`` is replaced by the new splits in ``sizes`` (or
    ``fractions``/``counts``). Other splits are kept as they are; the corpus and queries are shared, not copied."""
    sizes = dict(sizes or fractions or counts or {})
    if not sizes:
        raise ValueError("give split sizes, e.g. {'train': 0.9, 'dev': 0.1}")
    qrels = dataset.split_qrels(source_split)
    clash = [name for name in sizes if name in dataset.qrels and name != source_split]
    if clash:
        raise DatasetError(dataset.source or dataset.name, f"split(s) {', '.join(clash)} already exist; "
                           "choose other names or split that split instead")
    group_of: dict[str, str] = {}
    for qid in qrels:
        query = dataset.queries.get(qid)
        group_of[qid] = _text_key(query.text) if query is not None else f"id:{qid}"
    sizes_per_group: dict[str, int] = {}
    for group in group_of.values():
        sizes_per_group[group] = sizes_per_group.get(group, 0) + 1
    assignment = assign_groups(sizes_per_group, sizes, seed)
    new_qrels = {name: judged for name, judged in dataset.qrels.items() if name != source_split}
    for name in sizes:
        new_qrels[name] = {}
    for qid in sorted(qrels, key=_natural_key):
        new_qrels[assignment[group_of[qid]]][qid] = dict(qrels[qid])
    return Dataset(name=dataset.name, corpus=dataset.corpus, queries=dataset.queries, qrels=new_qrels,
                   source=dataset.source)


def split_examples(examples: Sequence[E], sizes: Mapping[str, Size], seed: int = 42) -> dict[str, list[E]]:
    """Split pairs or triplets by query (``query_id`` when given, else the normalised query text), keeping order."""
    keys = [e.query_id if e.query_id is not None else _text_key(e.query) for e in examples]
    # a query id and its text must agree on the group: merge ids that share a text
    text_of = {key: _text_key(e.query) for key, e in zip(keys, examples)}
    sizes_per_group: dict[str, int] = {}
    for text in dict.fromkeys(text_of.values()):
        sizes_per_group[text] = 0
    for key in dict.fromkeys(keys):
        sizes_per_group[text_of[key]] += 1
    assignment = assign_groups(sizes_per_group, sizes, seed)
    out: dict[str, list[E]] = {name: [] for name in sizes}
    for key, example in zip(keys, examples):
        out[assignment[text_of[key]]].append(example)
    return out


def sample_subset(dataset: Dataset, queries_per_split: Mapping[str, int], distractors: int,
                  name: str | None = None) -> Dataset:
    """A small, self-contained slice for quick runs and tests: the first N judged queries of each named split, every
    document they judge, and the first ``distractors`` other documents (real text, so BM25 has real competition)."""
    qrels = {}
    for split, count in queries_per_split.items():
        qids = list(dataset.split_queries(split))[:count]
        qrels[split] = {qid: dict(dataset.qrels[split][qid]) for qid in qids}
    judged = {d for split in qrels.values() for docs in split.values() for d in docs}
    keep = judged | set(list(dataset.corpus)[:distractors])
    corpus = {d: dataset.corpus[d] for d in dataset.corpus if d in keep}
    queries = {q: dataset.queries[q] for split in qrels.values() for q in split}
    return Dataset(name=name or f"{dataset.name}-subset", corpus=corpus, queries=queries, qrels=qrels,
                   source=dataset.source)
