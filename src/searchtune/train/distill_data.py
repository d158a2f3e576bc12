"""Training lists for distilling the hybrid ranker (BM25 + embedder) into a cross-encoder, without new judgments.

A cross-encoder started from a bi-encoder has a random head; ~700 judged queries with one positive each are too few
to train it (the issue measured dev NDCG@10 0.048-0.45). The hybrid ranker already ranks SciFact at 0.70, so its
fused score is a dense, graded label for every candidate, not just the judged one:

* every train query's hybrid top-``depth`` is a list labelled by the teacher's fused score (min-max linear fusion,
  the gateway's :func:`searchtune.vectors.fusion.fuse`); judged relevant documents are lifted above every teacher
  label (``1 + positive_bonus * grade``), and unjudged candidates the teacher scores *above* a judged positive are
  left out (the false-negative guard: probably relevant, never taught as worse);
* extra queries come from the corpus itself: a document's title is a query for its own abstract (the source
  document is shown without its title, so the answer is not a verbatim copy), labelled by the teacher only;
* the candidates come from both sides of the fusion (BM25 and the embedder), so the student sees the embedder's
  semantic neighbours as well as BM25's lexical ones. No test split is ever read.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from searchtune.data.records import Document, Qrels, Query
from searchtune.vectors.fusion import Fusion, fuse

Run = dict[str, dict[str, float]]

#: Label added per relevance grade to a judged document, on top of the teacher's best label of 1.0.
POSITIVE_BONUS = 0.5


@dataclass(frozen=True)
class TeacherList:
    """One query with ``docs`` (texts) and ``labels`` (teacher scores, judged ones lifted), best first."""

    query_id: str
    query: str
    docs: list[str]
    labels: list[float]
    source: str   # "judged" or "title"


def corpus_title_queries(corpus: Mapping[str, Document], count: int, seed: int,
                         exclude: set[str] | None = None, min_words: int = 4) -> dict[str, Query]:
    """``count`` documents' titles as queries (id ``title:<doc id>``), sampled reproducibly from documents with a
    title of at least ``min_words`` words and an abstract; ``exclude`` removes documents (e.g. judged ones)."""
    eligible = sorted(d for d, doc in corpus.items()
                      if len((doc.title or "").split()) >= min_words and doc.text and d not in (exclude or set()))
    chosen = random.Random(seed).sample(eligible, min(count, len(eligible)))
    return {f"title:{d}": Query(id=f"title:{d}", text=corpus[d].title) for d in sorted(chosen)}


def teacher_run(bm25: Run, knn: Run, weight: float, depth: int) -> Run:
    """The teacher's fused top-``depth`` per query (what the gateway's ``hybrid`` processor would return)."""
    fusion = Fusion("linear", weight=weight)
    run: Run = {}
    for qid in dict.fromkeys([*bm25, *knn]):
        hits = fuse(_ranked(bm25.get(qid, {})), _ranked(knn.get(qid, {})), fusion)[:depth]
        run[qid] = {hit.id: hit.score for hit in hits}
    return run


def build_teacher_lists(queries: Mapping[str, Query], teacher: Run, corpus: Mapping[str, Document],
                        qrels: Qrels | None = None, list_size: int = 8, seed: int = 42,
                        positive_bonus: float = POSITIVE_BONUS) -> list[TeacherList]:
    """One list of ``list_size`` documents per query: judged positives (train queries) or the source document
    (title queries) first, then the teacher's hardest candidates and a sample of easier ones."""
    rng = random.Random(seed)
    lists: list[TeacherList] = []
    for qid, query in queries.items():
        scores = teacher.get(qid, {})
        ranked = sorted(scores, key=lambda d: -scores[d])
        source_doc = qid.removeprefix("title:") if qid.startswith("title:") else None
        judged = (qrels or {}).get(qid, {})
        positives = [d for d, grade in judged.items() if grade > 0 and d in corpus]
        if source_doc is None and not positives:
            continue
        labels: dict[str, float] = {d: 1.0 + positive_bonus * judged[d] for d in positives[:max(1, list_size // 4)]}
        floor = min((scores.get(d, 0.0) for d in labels), default=None)
        pool = [d for d in ranked if d not in labels and d != source_doc and d in corpus
                and (floor is None or judged.get(d) == 0 or scores[d] < floor)]  # false-negative guard
        if source_doc is not None:
            labels[source_doc] = max(scores.values(), default=1.0)
        room = list_size - len(labels)
        hard = pool[:(room + 1) // 2]
        rest = pool[len(hard):]
        picked = hard + rng.sample(rest, min(room - len(hard), len(rest)))
        labels |= {d: scores[d] for d in picked}
        if len(labels) < 2:
            continue
        order = sorted(labels, key=lambda d: -labels[d])
        lists.append(TeacherList(query_id=qid, query=query.text, source="title" if source_doc else "judged",
                                 docs=[corpus[d].text if d == source_doc else corpus[d].full_text for d in order],
                                 labels=[round(labels[d], 6) for d in order]))
    return lists


def lists_dataset(lists: list[TeacherList], scale: float, seed: int):
    """``query, docs, labels`` rows for a listwise loss; labels times ``scale`` (the softmax temperature's inverse:
    ListNet's cross-entropy against softmax(labels) is the KL divergence to the teacher's distribution)."""
    from datasets import Dataset as HFDataset

    return HFDataset.from_dict({"query": [t.query for t in lists], "docs": [t.docs for t in lists],
                                "labels": [[v * scale for v in t.labels] for t in lists]}).shuffle(seed=seed)


def _ranked(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
