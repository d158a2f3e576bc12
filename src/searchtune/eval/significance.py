"""Paired significance of a metric difference between two systems over the same queries (scipy, not by hand)."""

from __future__ import annotations

from dataclasses import dataclass

from scipy import stats

from searchtune.eval.metrics import EvalResult


@dataclass(frozen=True)
class PairedTest:
    metric: str
    mean_baseline: float
    mean_system: float
    delta: float
    wins: int
    losses: int
    ties: int
    t_pvalue: float
    wilcoxon_pvalue: float

    @property
    def significant(self) -> bool:
        return self.t_pvalue < 0.05


def paired_test(baseline: EvalResult, system: EvalResult, metric: str = "NDCG@10") -> PairedTest:
    """Paired t-test and Wilcoxon signed-rank test over the queries both results share."""
    queries = sorted(set(baseline.per_query) & set(system.per_query))
    a = [baseline.per_query[q][metric] for q in queries]
    b = [system.per_query[q][metric] for q in queries]
    deltas = [y - x for x, y in zip(a, b)]
    wins = sum(d > 1e-9 for d in deltas)
    losses = sum(d < -1e-9 for d in deltas)
    nonzero = [d for d in deltas if abs(d) > 1e-9]
    t_p = float(stats.ttest_rel(b, a).pvalue) if len(queries) > 1 and nonzero else 1.0
    w_p = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) > 1 else 1.0
    n = len(queries) or 1
    return PairedTest(metric=metric, mean_baseline=sum(a) / n, mean_system=sum(b) / n, delta=(sum(b) - sum(a)) / n,
                      wins=wins, losses=losses, ties=len(queries) - wins - losses, t_pvalue=t_p, wilcoxon_pvalue=w_p)
