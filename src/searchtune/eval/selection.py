"""Choosing the stack to deploy by cross-validation over every judged training query.

With a few dozen judged queries a 10 % dev carve is 3-4 queries: one query moves the mean NDCG@10 by 0.1, so the
carve picks BM25 alone or a tuned model by chance (issue 14 measured it throwing away a +0.065 that needed no
training). Here every judged query is scored exactly once, out of fold: a candidate's free parameters (the fusion
weight) are tuned on the other folds only, and a trained candidate is scored with a model that never saw the query
(``knn_for_fold``). A dev carve is the same machinery with one split (:func:`dev_split`), used when judgments are
many (``KFOLD_BELOW``, measured in docs/choosing.md).

Rules: the zero-shot candidates (BM25 alone, the untrained base embedder fused with BM25) are always among the
choices; the winner is the best out-of-fold mean, ties going to the cheaper (earlier) candidate, so a stack that
loses to the zero-shot stack on this validation is never deployed. How sure: a paired bootstrap over the
out-of-fold per-query differences (winner minus the zero-shot stack).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from searchtune.data.records import Qrels
from searchtune.eval.hybrid import hybrid_run
from searchtune.eval.metrics import evaluate
from searchtune.eval.rerank import DEFAULT_FUSION_GRID
from searchtune.vectors.fusion import Fusion

Run = dict[str, dict[str, float]]
Split = tuple[list[str], list[str]]   # (query ids to tune on, query ids to score)
METRIC = "NDCG@10"
#: Below this many judged training queries the deployed stack is chosen by k-fold CV (docs/choosing.md measures it).
KFOLD_BELOW = 400
DEFAULT_FOLDS = 5
BOOTSTRAP_SAMPLES = 2000


class Candidate(Protocol):
    """A stack the chooser can validate. ``zero_shot``: needs no training on the judgments (BM25, base model)."""

    name: str
    zero_shot: bool

    def score_fold(self, fold: int, tune_on: Sequence[str], score_on: Sequence[str]) -> tuple[dict[str, float], dict]:
        """Per-query metric on ``score_on`` after tuning on ``tune_on`` only; and the parameters tuned."""

    def fit(self, query_ids: Sequence[str], fold_params: Sequence[dict]) -> dict:
        """The parameters to deploy with: tuned on ``query_ids``, or from the folds' (``fold_params``)."""


def _per_query(qrels: Qrels, run: Run, query_ids: Sequence[str]) -> dict[str, float]:
    subset = {q: qrels[q] for q in query_ids if q in qrels}
    result = evaluate(subset, {q: run.get(q, {}) for q in subset})
    return {q: values[METRIC] for q, values in result.per_query.items()}


@dataclass
class RunCandidate:
    """A fixed ranking with nothing to tune (BM25 alone, or any stack already run on the judged queries)."""

    name: str
    qrels: Qrels
    run: Run
    zero_shot: bool = True
    kind: str = "bm25"

    def score_fold(self, fold, tune_on, score_on):
        return _per_query(self.qrels, self.run, score_on), {}

    def fit(self, query_ids, fold_params):
        return {}


@dataclass
class HybridCandidate:
    """BM25 fused with a kNN run, the linear weight tuned on each fold's tuning part.

    ``knn`` is one run when the model never saw the judged queries (the base model); a trained model gives
    ``knn_for_fold(fold)``: the run of a model trained without that fold's scored queries (fold -1: the model
    trained on the training part, for a dev split). Fusion and NDCG are per query, so each weight of the grid is
    fused and scored once per kNN run over all judged queries; tuning on a fold is then a mean over its queries
    (the same choice :func:`~searchtune.eval.hybrid.tune_hybrid_weight` makes, at a fraction of the cost)."""

    name: str
    qrels: Qrels
    bm25: Run
    knn: Run | None = None
    knn_for_fold: Callable[[int], Run] | None = None
    zero_shot: bool = True
    kind: str = "zero-shot hybrid"
    grid: Sequence[float] = DEFAULT_FUSION_GRID
    _tables: dict = field(default_factory=dict, repr=False)

    def _table(self, fold: int) -> dict[float, dict[str, float]]:
        key = fold if self.knn_for_fold is not None else "shared"
        if key not in self._tables:
            if self.knn_for_fold is None and self.knn is None:
                raise ValueError(f"candidate {self.name!r} has neither a kNN run nor per-fold runs")
            knn = self.knn_for_fold(fold) if self.knn_for_fold is not None else self.knn
            ids = judged_ids(self.qrels)
            bm25 = {q: self.bm25.get(q, {}) for q in ids}
            self._tables[key] = {w: _per_query(self.qrels, hybrid_run(bm25, knn, Fusion("linear", weight=w)), ids)
                                 for w in self.grid}
        return self._tables[key]

    def _tuned(self, table: dict[float, dict[str, float]], query_ids: Sequence[str]) -> float:
        def mean(w: float) -> float:
            return float(np.mean([table[w].get(q, 0.0) for q in query_ids])) if query_ids else 0.0
        return max(self.grid, key=lambda w: (round(mean(w), 9), -w))

    def score_fold(self, fold, tune_on, score_on):
        table = self._table(fold)
        weight = self._tuned(table, tune_on)
        return {q: table[weight][q] for q in score_on if q in table[weight]}, {"weight": weight}

    def fit(self, query_ids, fold_params):
        """A model trained on the judged queries would tune its weight on queries it saw (too much kNN weight):
        a trained candidate deploys the median of its folds' weights, a zero-shot one tunes on all queries."""
        if self.knn_for_fold is not None and fold_params:
            return {"weight": float(np.median([p["weight"] for p in fold_params]))}
        return {"weight": self._tuned(self._table(-1), query_ids)}


def kfold_splits(query_ids: Sequence[str], folds: int = DEFAULT_FOLDS, seed: int = 42) -> list[Split]:
    """``folds`` disjoint scored parts covering every query once (seeded shuffle); fewer folds if fewer queries."""
    ids = sorted(set(query_ids))
    random.Random(seed).shuffle(ids)
    folds = max(2, min(folds, len(ids)))
    parts = [ids[i::folds] for i in range(folds)]
    return [([q for j, p in enumerate(parts) if j != i for q in p], part) for i, part in enumerate(parts)]


def dev_split(tune_on: Sequence[str], dev_ids: Sequence[str]) -> list[Split]:
    """A dev carve as one split, scored on ``dev_ids`` (fold -1: trained candidates use the model trained without
    them). ``tune_on`` is where weights are tuned: the dev queries themselves for a trained model (it saw the
    rest), as the quickstart did before this module; the training part for zero-shot stacks."""
    return [(list(tune_on), list(dev_ids))]


def validation_mode(judged_queries: int, threshold: int = KFOLD_BELOW) -> str:
    """``kfold`` below the measured threshold of judged training queries, else ``dev``."""
    return "kfold" if judged_queries < threshold else "dev"


@dataclass
class CandidateScore:
    name: str
    kind: str
    zero_shot: bool
    mean: float
    per_fold: list[float]
    per_query: dict[str, float]
    fold_params: list[dict]
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "zero_shot": self.zero_shot, "mean_ndcg@10": round(self.mean, 4),
                "per_fold_ndcg@10": [round(v, 4) for v in self.per_fold], "fold_params": self.fold_params,
                "params": self.params}


@dataclass
class Selection:
    winner: str
    mode: str
    folds: int
    queries: int
    candidates: dict[str, CandidateScore]
    reference: str                    # the zero-shot stack the winner is compared with
    margin: float                     # winner mean - reference mean (out of fold)
    margin_ci95: tuple[float, float]
    p_better: float                   # bootstrap share of resamples where the winner beats the reference
    margin_over_bm25: float | None = None
    margin_over_bm25_ci95: tuple[float, float] | None = None

    def _compared(self) -> tuple[str, float, tuple[float, float]] | None:
        """What the winner is measured against: the zero-shot stack, or BM25 when the zero-shot stack won."""
        if self.winner != self.reference:
            return self.reference, self.margin, self.margin_ci95
        if self.margin_over_bm25_ci95 is not None and self.margin_over_bm25:
            return "BM25", float(self.margin_over_bm25), self.margin_over_bm25_ci95
        return None

    @property
    def sure(self) -> str:
        """Plain words for the report: how sure the validation is that the winner is ahead."""
        compared = self._compared()
        if compared is None:
            return "no other stack did better"
        return "sure (95% interval above 0)" if compared[2][0] > 0 else "not sure (95% interval includes 0)"

    def to_dict(self) -> dict:
        return {"winner": self.winner, "mode": self.mode, "folds": self.folds, "queries": self.queries,
                "reference": self.reference, "margin_ndcg@10": round(self.margin, 4),
                "margin_ci95": [round(v, 4) for v in self.margin_ci95], "p_better": round(self.p_better, 3),
                "margin_over_bm25": None if self.margin_over_bm25 is None else round(self.margin_over_bm25, 4),
                "margin_over_bm25_ci95": None if self.margin_over_bm25_ci95 is None else
                [round(v, 4) for v in self.margin_over_bm25_ci95],
                "sure": self.sure, "candidates": {n: c.to_dict() for n, c in self.candidates.items()}}

    def summary(self) -> str:
        head = f"deployed stack: {self.winner} ({self.mode}, {self.folds} fold(s), {self.queries} queries)"
        compared = self._compared()
        if compared is None:
            return f"{head}; {self.sure}"
        name, margin, (low, high) = compared
        return f"{head}; {margin:+.4f} NDCG@10 over {name} (95% CI {low:+.4f}..{high:+.4f}); {self.sure}"


def paired_bootstrap(deltas: Sequence[float], samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = 0) -> tuple[tuple[float, float], float]:
    """95% percentile interval of the mean paired difference and the share of resampled means above 0."""
    values = np.asarray(deltas, dtype=float)
    if not len(values):
        return (0.0, 0.0), 0.0
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high)), float((means > 0).mean())


def choose_stack(qrels: Qrels, candidates: Sequence[Candidate], splits: Sequence[Split], mode: str = "kfold",
                 reference: str | None = None) -> Selection:
    """Validate every candidate on the same splits and pick the best out-of-fold mean (ties: earlier candidate).

    ``reference`` names the zero-shot stack the winner must not lose to (default: the best zero-shot candidate);
    ``splits`` from :func:`kfold_splits` (fold i) or :func:`dev_split` (fold -1)."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    if not any(c.zero_shot for c in candidates):
        raise ValueError("the candidates must include a zero-shot stack (BM25 or the base model fused with BM25)")
    single = len(splits) == 1
    scores: dict[str, CandidateScore] = {}
    for candidate in candidates:
        per_query: dict[str, float] = {}
        per_fold, params = [], []
        for i, (tune_on, score_on) in enumerate(splits):
            values, tuned = candidate.score_fold(-1 if single else i, tune_on, score_on)
            per_query |= values
            per_fold.append(float(np.mean(list(values.values()))) if values else 0.0)
            params.append(tuned)
        mean = float(np.mean(list(per_query.values()))) if per_query else 0.0
        scores[candidate.name] = CandidateScore(candidate.name, getattr(candidate, "kind", candidate.name),
                                                candidate.zero_shot, mean, per_fold, per_query, params)
    order = [c.name for c in candidates]
    winner = max(order, key=lambda n: (round(scores[n].mean, 9), -order.index(n)))
    zero_shot = [c.name for c in candidates if c.zero_shot]
    ref = reference or max(zero_shot, key=lambda n: (round(scores[n].mean, 9), -order.index(n)))
    ci, p_better = paired_bootstrap(_deltas(scores[winner], scores[ref]))
    bm25 = next((n for n in order if getattr(candidates[order.index(n)], "kind", "") == "bm25"), None)
    bm25_ci = None if bm25 is None else paired_bootstrap(_deltas(scores[winner], scores[bm25]))[0]
    all_ids = sorted({q for tune_on, score_on in splits for q in (*tune_on, *score_on)})
    scores[winner].params = next(c for c in candidates if c.name == winner).fit(all_ids, scores[winner].fold_params)
    return Selection(winner=winner, mode=mode, folds=len(splits), queries=len(scores[winner].per_query),
                     candidates=scores, reference=ref, margin=scores[winner].mean - scores[ref].mean,
                     margin_ci95=ci, p_better=p_better,
                     margin_over_bm25=None if bm25 is None else scores[winner].mean - scores[bm25].mean,
                     margin_over_bm25_ci95=bm25_ci)


def _deltas(system: CandidateScore, baseline: CandidateScore) -> list[float]:
    return [value - baseline.per_query.get(q, 0.0) for q, value in system.per_query.items()]


def judged_ids(qrels: Qrels) -> list[str]:
    """Query ids with at least one relevant judgment (the ones a metric can score)."""
    return sorted(q for q, docs in qrels.items() if any(g > 0 for g in docs.values()))

