"""What the compare and query-set views show, computed from rankings and judgments (no HTTP, no templates).

Metrics come from ir-measures through eval.metrics (never by hand); "judged" means the pair has a grade in the
dataset or the list; rank movement is relative to the first configuration on the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ir_measures import RR, R, nDCG

from searchtune.data.records import Qrels
from searchtune.eval.metrics import evaluate
from searchtune.workbench.configs import Hit, Ranking

#: The query-set table's columns: what a top-10 page can honestly measure.
TABLE_METRICS: dict[str, object] = {"NDCG@10": nDCG @ 10, "MRR@10": RR(rel=1) @ 10, "Recall@10": R(rel=1) @ 10}


@dataclass
class RankedHit:
    rank: int
    hit: Hit
    grade: int | None
    movement: int | None  # places gained against the first list (None: not in it; first list: 0)


@dataclass
class ComparedList:
    config: str
    hits: list[RankedHit]
    ndcg: float | None
    error: str | None = None


@dataclass
class QueryRow:
    """One query of the evaluation table."""

    query_id: str
    text: str
    metrics: dict[str, dict[str, float]]  # config -> metric -> value
    delta: float
    unjudged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _run(ranking: Ranking) -> dict[str, float]:
    """Rank-encoded scores: what was shown is what is measured (ties in _score cannot reorder it)."""
    return {h.doc_id: float(len(ranking.hits) - i) for i, h in enumerate(ranking.hits)}


def query_metrics(qid: str, ranking: Ranking, grades: dict[str, int]) -> dict[str, float] | None:
    """TABLE_METRICS of one query, or ``None`` when it has no relevant judgment (nothing to measure against)."""
    if not any(g > 0 for g in grades.values()) or ranking.error:
        return None
    return evaluate({qid: grades}, {qid: _run(ranking)}, TABLE_METRICS).per_query[qid]


def compare(qid: str, rankings: list[Ranking], grades: dict[str, int]) -> list[ComparedList]:
    """The side-by-side lists of one query: grades, movement against the first list, NDCG@10 where judged."""
    first = {h.doc_id: i for i, h in enumerate(rankings[0].hits)} if rankings else {}
    lists = []
    for position, ranking in enumerate(rankings):
        hits = []
        for i, hit in enumerate(ranking.hits):
            before = first.get(hit.doc_id)
            movement = 0 if position == 0 else (None if before is None else before - i)
            hits.append(RankedHit(i + 1, hit, grades.get(hit.doc_id), movement))
        metrics = query_metrics(qid, ranking, grades)
        lists.append(ComparedList(ranking.config, hits, metrics["NDCG@10"] if metrics else None, ranking.error))
    return lists


def unjudged(rankings: list[Ranking], grades: dict[str, int], depth: int = 10) -> list[str]:
    """Documents some configuration puts in its top ``depth`` that nobody graded yet, in first-seen order."""
    seen: dict[str, None] = {}
    for ranking in rankings:
        for hit in ranking.hits[:depth]:
            if hit.doc_id not in grades:
                seen.setdefault(hit.doc_id)
    return list(seen)


def table_row(qid: str, text: str, rankings: list[Ranking], grades: dict[str, int]) -> QueryRow:
    """One row of the query-set table (the first two configurations decide win/loss on NDCG@10)."""
    empty = dict.fromkeys(TABLE_METRICS, 0.0)
    metrics = {r.config: query_metrics(qid, r, grades) or empty for r in rankings}
    ndcg = [metrics[r.config]["NDCG@10"] for r in rankings[:2]]
    return QueryRow(qid, text, metrics, ndcg[1] - ndcg[0] if len(ndcg) == 2 else 0.0,
                    unjudged(rankings, grades), [f"{r.config}: {r.error}" for r in rankings if r.error])


def summary(rows: list[QueryRow], configs: list[str], qrels: Qrels) -> dict:
    """Means per configuration (judged queries only), wins/losses/ties of the second against the first, and the
    number of unjudged top-10 documents over the set."""
    judged = [r for r in rows if any(g > 0 for g in qrels.get(r.query_id, {}).values())]
    means = {c: {"num_queries": len(judged),
                 "aggregate": {m: (sum(r.metrics[c][m] for r in judged) / len(judged) if judged else 0.0)
                               for m in TABLE_METRICS}} for c in configs}
    wins = sum(r.delta > 0 for r in judged)
    losses = sum(r.delta < 0 for r in judged)
    return {"systems": means, "wins": wins, "losses": losses, "ties": len(judged) - wins - losses,
            "judged_queries": len(judged), "unjudged_docs": sum(len(r.unjudged) for r in rows)}
