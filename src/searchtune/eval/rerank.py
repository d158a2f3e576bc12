"""Rerank a BM25 run with a model and fuse the two rankings.

A model reranks each query's BM25 top-k; the rest of the BM25 list is kept below it so Recall@100 still counts it.
Fusion min-max normalises BM25 and model scores per query and interpolates them: on small domains a lightly tuned
model plus BM25 usually beats either alone, and the weight is tuned on a dev split, never on the test split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from searchtune import normalize
from searchtune.data.records import Document, Qrels, Query
from searchtune.eval.metrics import EvalResult, evaluate

Run = dict[str, dict[str, float]]

#: Model weights tried when tuning fusion on dev (0 = BM25 only, 1 = model only).
DEFAULT_FUSION_GRID: tuple[float, ...] = tuple(round(i / 20, 2) for i in range(21))


def top_k_docs(scores: Mapping[str, float], k: int) -> list[str]:
    """Doc ids of the ``k`` best scores (ties broken by id so runs are reproducible)."""
    return [did for did, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]]


def rerank_run(scorer, queries: Mapping[str, Query], run: Run, docs: Mapping[str, Document], top_k: int = 100,
               on_progress: Callable[[int], None] | None = None) -> Run:
    """Model scores for each query's BM25 top-k (only those documents; see :func:`with_tail`).

    Embedding scorers embed every distinct candidate document once for all queries (SciFact's 300 test queries share
    many documents), cross-encoders and remote rerankers score each query's list in one call.
    """
    candidates = {qid: [d for d in top_k_docs(run.get(qid, {}), top_k) if d in docs] for qid in queries}
    if getattr(scorer, "kind", None) == "embedding" and hasattr(scorer, "embed"):
        return _rerank_with_embeddings(scorer, queries, candidates, docs, on_progress)
    reranked: Run = {}
    for qid, query in queries.items():
        ids = candidates[qid]
        scores = scorer.score(query.text, [docs[d].full_text for d in ids]) if ids else []
        reranked[qid] = dict(zip(ids, (float(s) for s in scores)))
        if on_progress:
            on_progress(1)
    return reranked


def _rerank_with_embeddings(scorer, queries: Mapping[str, Query], candidates: dict[str, list[str]],
                            docs: Mapping[str, Document], on_progress) -> Run:
    unique = sorted({d for ids in candidates.values() for d in ids})
    doc_vectors = dict(zip(unique, scorer.embed([docs[d].full_text for d in unique]))) if unique else {}
    qids = list(queries)
    query_vectors = scorer.embed([queries[q].text for q in qids]) if qids else []
    reranked: Run = {}
    for qid, qvec in zip(qids, query_vectors):
        reranked[qid] = {d: float(doc_vectors[d] @ qvec) for d in candidates[qid]}
        if on_progress:
            on_progress(1)
    return reranked


def minmax(scores: Mapping[str, float]) -> dict[str, float]:
    """One query's scores by document id through the shared normaliser (:func:`searchtune.normalize.minmax`)."""
    return normalize.minmax_by_id(scores)


def with_tail(reranked: Run, first_stage: Run) -> Run:
    """Append each query's first-stage documents that were not reranked, below every reranked one, in BM25 order.

    Equal model scores are ordered by the first stage (what the gateway does: its sort is stable over the previous
    stage's order), and nudged apart by a few ULPs so the metric library cannot fall back to document-id order."""
    full: Run = {}
    for qid, first in first_stage.items():
        first_rank = {d: rank for rank, d in enumerate(top_k_docs(first, len(first)))}
        head = break_ties(reranked.get(qid, {}), first_rank)
        rest = [d for d in first_rank if d not in head]
        head.update(zip(rest, normalize.tail_scores(min(head.values(), default=0.0), len(rest))))
        full[qid] = head
    return full


def break_ties(scores: Mapping[str, float], first_rank: Mapping[str, int]) -> dict[str, float]:
    """``scores`` made strictly decreasing in the order (score, then the previous stage's rank), each value moved
    by at most a few ULPs (``math.nextafter``), so any consumer sorting by score sees the gateway's order."""
    far = len(first_rank)
    order = sorted(scores, key=lambda d: (-scores[d], first_rank.get(d, far), d))
    out: dict[str, float] = {}
    previous = math.inf
    for did in order:
        previous = min(float(scores[did]), math.nextafter(previous, -math.inf))
        out[did] = previous
    return out


def fuse_runs(first_stage: Run, model: Run, weight: float) -> Run:
    """``weight * minmax(model) + (1 - weight) * minmax(bm25)`` over the reranked documents; the tail stays below."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"fusion weight must be in [0, 1], got {weight}")
    fused: Run = {}
    for qid, model_scores in model.items():
        first = first_stage.get(qid, {})
        bm25_norm = minmax({d: first.get(d, 0.0) for d in model_scores})
        model_norm = minmax(model_scores)
        fused[qid] = {d: weight * model_norm[d] + (1.0 - weight) * bm25_norm[d] for d in model_scores}
    return with_tail(fused, first_stage)


@dataclass
class FusionChoice:
    weight: float
    value: float
    metric: str
    curve: dict[float, float]


def tune_fusion_weight(qrels: Qrels, first_stage: Run, model: Run, metric: str = "NDCG@10",
                       grid: Sequence[float] = DEFAULT_FUSION_GRID) -> FusionChoice:
    """The model weight in ``grid`` that maximises ``metric`` on ``qrels`` (ties go to the smaller weight)."""
    curve = {w: evaluate(qrels, fuse_runs(first_stage, model, w)).aggregate[metric] for w in grid}
    best = max(curve, key=lambda w: (curve[w], -w))
    return FusionChoice(weight=best, value=curve[best], metric=metric, curve=curve)


@dataclass
class WinLoss:
    wins: int
    losses: int
    ties: int

    def to_dict(self) -> dict[str, int]:
        return {"wins": self.wins, "losses": self.losses, "ties": self.ties}


def wins_losses(baseline: EvalResult, system: EvalResult, metric: str = "NDCG@10", eps: float = 1e-9) -> WinLoss:
    """Per-query comparison of ``system`` against ``baseline`` on ``metric``."""
    wins = losses = ties = 0
    for qid, values in baseline.per_query.items():
        delta = system.per_query.get(qid, {}).get(metric, 0.0) - values[metric]
        if delta > eps:
            wins += 1
        elif delta < -eps:
            losses += 1
        else:
            ties += 1
    return WinLoss(wins, losses, ties)
