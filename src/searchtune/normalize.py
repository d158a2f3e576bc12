"""The one min-max normaliser, used wherever model and BM25 scores are fused (gateway pipelines, eval fusion, the
training dev evaluator through eval), so a fusion weight tuned offline means the same thing in front of the cluster;
and the one rule that scores the candidates a reranker did not see (:func:`tail_scores`), for the same reason.

A constant list (no spread, or a single document) maps to all **0.0**: it carries no information about the order,
so it must add nothing to a fused score rather than lift every document by the full weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: What every score of a constant list becomes.
CONSTANT_LIST_VALUE = 0.0
_NO_SPREAD = 1e-12


def minmax(scores: Sequence[float]) -> list[float]:
    """Scale to [0, 1] (lowest -> 0, highest -> 1); a constant list -> all :data:`CONSTANT_LIST_VALUE`."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    span = high - low
    if span <= _NO_SPREAD:
        return [CONSTANT_LIST_VALUE] * len(scores)
    return [(s - low) / span for s in scores]


def minmax_by_id(scores: Mapping[str, float]) -> dict[str, float]:
    """One query's scores keyed by document id, through :func:`minmax` (the same constants, the same ids)."""
    return dict(zip(scores, minmax(list(scores.values()))))


def tail_scores(floor: float, count: int) -> list[float]:
    """Scores for the ``count`` candidates after a rerank window, in their previous order, all below ``floor`` (the
    lowest reranked score): the gateway's page and offline eval's ``with_tail`` rank them the same way."""
    return [floor - 1.0 - rank * 1e-3 for rank in range(count)]
