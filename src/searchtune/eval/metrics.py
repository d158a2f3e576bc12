"""Ranking metrics computed by ir-measures (pytrec_eval underneath), never by hand.

Graded judgments feed NDCG as gains; binary metrics (MRR, Recall, MAP) treat any grade >= 1 as relevant. Queries
with judgments but no retrieved documents count as zeros (``pytrec_eval`` would otherwise drop them and inflate the
mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import ir_measures
from ir_measures import AP, RR, R, nDCG

from searchtune.data.records import Qrels
from searchtune.storage import atomic_write_json, atomic_writer

#: Display name -> ir-measures measure. The order is the order of every table.
METRICS: dict[str, object] = {
    "NDCG@10": nDCG @ 10,
    "MRR@10": RR(rel=1) @ 10,
    "Recall@100": R(rel=1) @ 100,
    "MAP": AP(rel=1),
}

Run = dict[str, dict[str, float]]


@dataclass
class EvalResult:
    """Mean metrics plus per-query values (the raw material for significance tests and win/loss charts)."""

    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    num_queries: int = 0

    def to_dict(self) -> dict:
        return {"num_queries": self.num_queries, "metrics": self.aggregate, "per_query": self.per_query}


def evaluate(qrels: Qrels, run: Run, metrics: dict[str, object] | None = None) -> EvalResult:
    """Evaluate ``run`` against ``qrels`` over every judged query that has at least one relevant document."""
    metrics = metrics or METRICS
    judged = {qid: docs for qid, docs in qrels.items() if any(g > 0 for g in docs.values())}
    clean_run = {qid: {did: float(s) for did, s in docs.items() if math.isfinite(s)} for qid, docs in run.items() if qid in judged}
    per_query: dict[str, dict[str, float]] = {qid: {name: 0.0 for name in metrics} for qid in judged}
    by_measure = {measure: name for name, measure in metrics.items()}
    qrels_for_lib = {qid: {did: int(g) for did, g in docs.items()} for qid, docs in judged.items()}
    if any(clean_run.values()):
        for value in ir_measures.iter_calc(list(metrics.values()), qrels_for_lib,
                                           {q: d for q, d in clean_run.items() if d}):
            per_query[value.query_id][by_measure[value.measure]] = float(value.value)
    count = len(per_query)
    aggregate = {name: (sum(q[name] for q in per_query.values()) / count if count else 0.0) for name in metrics}
    return EvalResult(aggregate=aggregate, per_query=per_query, num_queries=count)


def write_trec_run(run: Run, path: str | Path, tag: str = "searchtune") -> None:
    """TREC run format (``qid Q0 docid rank score tag``), written atomically (storage.atomic_writer)."""
    with atomic_writer(path) as out:
        for qid, docs in run.items():
            ranked = sorted(docs.items(), key=lambda item: item[1], reverse=True)
            for rank, (did, score) in enumerate(ranked, 1):
                out.write(f"{qid} Q0 {did} {rank} {score:.6f} {tag}\n")


def write_json(payload: dict, path: str | Path) -> None:
    """Metrics and stats as JSON, written atomically (a reader never sees half a file)."""
    atomic_write_json(path, payload)
