"""Fusing a BM25 ranking with a kNN ranking, as pure functions shared by the gateway and in-process evaluation.

Elasticsearch's own fusion (the ``rrf`` and ``linear`` retrievers) needs an Enterprise licence, so searchtune fuses
the two result lists itself:

* ``linear``: ``weight * minmax(knn) + (1 - weight) * minmax(bm25)`` per query, where a document missing from one
  list scores 0 on that side (it ranked below that list's last hit). The weight is tuned on dev queries.
* ``rrf``: ``sum 1 / (rank_constant + rank)`` over the lists a document appears in (rank from 1); needs no tuning
  and ignores score scales.

Ties are broken by the BM25 rank, then the kNN rank, then the id, so the order is reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from searchtune.normalize import minmax_by_id as minmax

Ranked = Sequence[tuple[str, float]]   # (doc id, score), best first
FusionMethod = Literal["linear", "rrf"]
DEFAULT_WEIGHT = 0.5
DEFAULT_RANK_CONSTANT = 60


@dataclass(frozen=True)
class Fusion:
    """How to fuse: ``linear`` with the kNN side's ``weight`` in [0, 1], or ``rrf`` with ``rank_constant`` >= 1."""

    method: FusionMethod = "linear"
    weight: float = DEFAULT_WEIGHT
    rank_constant: int = DEFAULT_RANK_CONSTANT

    def __post_init__(self):
        if self.method not in ("linear", "rrf"):
            raise ValueError(f"fusion method must be 'linear' or 'rrf', got {self.method!r}")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"fusion weight must be in [0, 1], got {self.weight}")
        if self.rank_constant < 1:
            raise ValueError(f"rank_constant must be >= 1, got {self.rank_constant}")

    def describe(self) -> dict:
        return {"method": self.method, "weight": self.weight} if self.method == "linear" else \
            {"method": self.method, "rank_constant": self.rank_constant}


@dataclass(frozen=True)
class FusedHit:
    id: str
    score: float
    bm25_score: float | None
    knn_score: float | None
    bm25_rank: int | None   # 1-based, None when BM25 did not return it
    knn_rank: int | None


def fuse(bm25: Ranked, knn: Ranked, fusion: Fusion = Fusion()) -> list[FusedHit]:
    """The union of both lists, best fused score first."""
    bm25_scores, knn_scores = dict(bm25), dict(knn)
    bm25_rank = {doc: rank for rank, (doc, _) in enumerate(bm25, start=1)}
    knn_rank = {doc: rank for rank, (doc, _) in enumerate(knn, start=1)}
    ids = list(dict.fromkeys([doc for doc, _ in bm25] + [doc for doc, _ in knn]))
    if fusion.method == "rrf":
        k = fusion.rank_constant
        scores = {d: sum(1.0 / (k + r[d]) for r in (bm25_rank, knn_rank) if d in r) for d in ids}
    else:
        bm25_norm, knn_norm = minmax(bm25_scores), minmax(knn_scores)  # normalize.minmax_by_id
        w = fusion.weight
        scores = {d: w * knn_norm.get(d, 0.0) + (1.0 - w) * bm25_norm.get(d, 0.0) for d in ids}
    far = len(ids) + 1
    ids.sort(key=lambda d: (-scores[d], bm25_rank.get(d, far), knn_rank.get(d, far), d))
    return [FusedHit(id=d, score=scores[d], bm25_score=bm25_scores.get(d), knn_score=knn_scores.get(d),
                     bm25_rank=bm25_rank.get(d), knn_rank=knn_rank.get(d)) for d in ids]


def fuse_runs(bm25_run: Mapping[str, Mapping[str, float]], knn_run: Mapping[str, Mapping[str, float]],
              fusion: Fusion, depth: int | None = None) -> dict[str, dict[str, float]]:
    """:func:`fuse` per query over two runs (``run[qid][doc] = score``); keeps the best ``depth`` per query."""
    fused: dict[str, dict[str, float]] = {}
    for qid in dict.fromkeys([*bm25_run, *knn_run]):
        hits = fuse(_ranked(bm25_run.get(qid, {})), _ranked(knn_run.get(qid, {})), fusion)
        fused[qid] = {hit.id: hit.score for hit in hits[:depth]}
    return fused


def page(hits: Sequence[FusedHit], from_: int, size: int) -> list[FusedHit]:
    """Hits ``[from, from + size)`` of the fused ranking."""
    return list(hits[max(from_, 0):max(from_, 0) + max(size, 0)])


def _ranked(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
