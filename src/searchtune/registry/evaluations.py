"""Evaluation results recorded on the registry version that was evaluated.

Why: ``models show`` used to print ``"metrics": {}`` right after ``eval --rerank NAME@prod``; the numbers that decide
a promotion lived only in a JSON file somewhere. Recording them on the version (under the registry's lock, in the
same index.json that names the version) makes ``models list``/``show`` answer "how good is prod?" directly.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from searchtune.registry.registry import ModelRegistry, RegistryError

#: Metrics copied into the version's flat ``metrics`` (as ``<dataset>/<split> <metric>``).
RECORDED_METRICS = ("NDCG@10", "MRR@10", "Recall@100", "MAP")
#: Evaluations kept per version (the newest last).
MAX_EVALUATIONS = 20


def model_system(results: dict) -> str:
    """The system that stands for the model: the fused one when fusion was reported, else the plain rerank."""
    fused = [name for name in results if name.startswith("fused")]
    reranked = [name for name in results if name.startswith("rerank")]
    return (fused or reranked or list(results))[-1]


def record_evaluation(store: str | None, name: str, version: int, dataset: str, split: str, index: str,
                      results: dict, payload: dict[str, Any]) -> str:
    """Add one evaluation to ``name`` version ``version``; returns the metric key prefix it used."""
    registry = ModelRegistry(store)
    system = model_system(results)
    aggregate = {m: round(float(results[system].aggregate[m]), 6) for m in RECORDED_METRICS
                 if m in results[system].aggregate}
    baseline = results.get("BM25")
    entry = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "dataset": dataset, "split": split,
             "index": index, "system": system, "queries": results[system].num_queries, "metrics": aggregate,
             "bm25": {m: round(float(baseline.aggregate[m]), 6) for m in aggregate} if baseline else {},
             "fusion": payload.get("fusion", {}).get("weight")}
    prefix = f"{dataset}/{split}"
    with registry._locked(name):
        index_doc = registry.index(name)
        record = index_doc["versions"].get(str(version))
        if record is None:
            raise RegistryError(f"'{name}' has no version {version}")
        record.setdefault("metrics", {}).update({f"{prefix} {m}": v for m, v in aggregate.items()})
        record["evaluations"] = [*record.get("evaluations", []), entry][-MAX_EVALUATIONS:]
        registry._write_index(name, index_doc)
    return prefix
