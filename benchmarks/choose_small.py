"""Benchmark: how few judged queries is "few"? A dev carve vs k-fold CV choosing the deployed stack.

On Cranfield and NPL (../shared/datasets; each has one judged query set), for each size n of a simulated judgment
set (default 15, 30, 60, 120 training queries) and several seeds: n queries are the user's judgments, every other
judged query is the test set. The candidates are the zero-shot stacks, which need BM25 plus one embedding of the
corpus with the base model (cached under $SEARCHTUNE_HOME/choose-cache): BM25 alone, the base model's kNN alone,
its RRF fusion with BM25, and its linear fusion with BM25 (weight tuned on the training queries). Each way of
choosing picks one stack from the training queries only; the pick is then deployed with its weight tuned on all n
and scored on test, against the test-best candidate (each tuned the same way):

* ``dev 10% (as before)``: a 10 % carve (at least one query), weight tuned and stack chosen on the carve — what the
  quickstart did before eval/selection.py;
* ``dev 10%``: the weight tuned on the other 90 %, the stack chosen on the carve;
* ``5-fold``: :func:`searchtune.eval.selection.choose_stack` over all n queries.

Tuned-embedder candidates are not simulated here: every (size, seed, fold) would need its own training run, which
2 shared cores cannot afford (docs/choosing.md says what this leaves open).

    .venv/bin/python benchmarks/choose_small.py --port 9635 [--seeds 10] [--sizes 15,30,60,120] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from searchtune.config import shared_datasets_dir  # noqa: E402
from searchtune.data import load_dataset  # noqa: E402
from searchtune.eval.hybrid import exact_knn_run  # noqa: E402
from searchtune.eval.selection import (HybridCandidate, RunCandidate, choose_stack, dev_split,  # noqa: E402
                                       judged_ids, kfold_splits)
from searchtune.search.client import es_client  # noqa: E402
from searchtune.search.indexing import build_index  # noqa: E402
from searchtune.search.retrieval import bm25_search  # noqa: E402
from searchtune.vectors.embedders import open_embedder  # noqa: E402
from searchtune.vectors.fusion import Fusion, fuse_runs  # noqa: E402

DATASETS = {"cranfield": "cranfield", "npl": "npl_vaswani", "scifact": "scifact/beir_format_derived"}
#: Which stacks are on offer: the quickstart's zero-shot pair, or every zero-shot variant (a harder choice).
CANDIDATE_SETS = {"quickstart": ("BM25", "zero-shot hybrid"),
                  "wide": ("BM25", "zero-shot kNN", "zero-shot RRF", "zero-shot hybrid")}
METHODS = ("dev 10% (as before)", "dev 10%", "5-fold")


def cache_dir() -> Path:
    root = Path(os.environ.get("SEARCHTUNE_HOME", Path.home() / ".searchtune")) / "choose-cache"
    root.mkdir(parents=True, exist_ok=True)
    return root


def runs_for(name: str, folder: Path, client, max_length: int) -> tuple[dict, dict, dict, dict]:
    """Qrels, BM25 top-100 and base-model exact kNN top-100 of every judged query (cached as JSON)."""
    dataset = load_dataset(folder)
    qrels = {}
    for split in dataset.splits:   # every judged query is a possible judgment (SciFact: train and test pooled)
        qrels |= dataset.split_qrels(split)
    cached = cache_dir() / f"{name}-runs.json"
    if cached.is_file():
        data = json.loads(cached.read_text())
        return qrels, data["bm25"], data["knn"], data["timing"]
    queries = {q: dataset.queries[q] for q in judged_ids(qrels)}
    timing = {"docs": len(dataset.corpus), "queries": len(queries)}
    index = f"choose-{name}"
    started = time.perf_counter()
    build_index(client, index, dataset.corpus.values(), total=len(dataset.corpus), recreate=True)
    client.indices.refresh(index=index)
    bm25, _ = bm25_search(client, index, queries, top_k=100)
    timing["bm25_index_and_search_s"] = round(time.perf_counter() - started, 1)
    embedder = open_embedder(None, max_length=max_length)
    started = time.perf_counter()
    knn, _ = exact_knn_run(embedder, dataset.corpus, queries, k=100)
    timing["embed_corpus_s"] = round(time.perf_counter() - started, 1)
    cached.write_text(json.dumps({"bm25": bm25, "knn": knn.run, "timing": timing}))
    return qrels, bm25, knn.run, timing


def candidates(qrels, bm25, knn):
    rrf = fuse_runs(bm25, knn, Fusion("rrf"), depth=100)
    return [RunCandidate("BM25", qrels, bm25),
            RunCandidate("zero-shot kNN", qrels, knn, kind="zero-shot knn"),
            RunCandidate("zero-shot RRF", qrels, rrf, kind="zero-shot rrf"),
            HybridCandidate("zero-shot hybrid", qrels, bm25, knn=knn)]


def one_trial(qrels, cands, ids: list[str], n: int, seed: int) -> dict:
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    train, test = order[:n], order[n:]
    carve = max(1, round(0.1 * n))
    dev, rest = train[:carve], train[carve:]
    deployed = {}
    for c in cands:   # every candidate deployed with its weight tuned on all n training queries, scored on test
        values, _ = c.score_fold(-1, train, test)
        deployed[c.name] = float(np.mean(list(values.values())))
    best = max(deployed.values())
    picks = {"dev 10% (as before)": choose_stack(qrels, cands, dev_split(dev, dev), mode="dev").winner,
             "dev 10%": choose_stack(qrels, cands, dev_split(rest, dev), mode="dev").winner,
             "5-fold": choose_stack(qrels, cands, kfold_splits(train, 5, seed)).winner}
    return {"test": deployed, "best": best, "picks": picks}


def summarise(trials: list[dict]) -> dict:
    out = {}
    for method in METHODS:
        regrets = [t["best"] - t["test"][t["picks"][method]] for t in trials]
        out[method] = {"picked_test_best": round(float(np.mean([r <= 1e-9 for r in regrets])), 3),
                       "within_0.01": round(float(np.mean([r <= 0.01 for r in regrets])), 3),
                       "mean_regret": round(float(np.mean(regrets)), 4),
                       "max_regret": round(float(np.max(regrets)), 4),
                       "mean_test_ndcg@10": round(float(np.mean([t["test"][t["picks"][method]] for t in trials])), 4),
                       "below_bm25_by_0.01": round(float(np.mean(
                           [t["test"][t["picks"][method]] < t["test"]["BM25"] - 0.01 for t in trials])), 3),
                       "picked": {n: sum(t["picks"][method] == n for t in trials) for n in trials[0]["test"]}}
    out["test_ndcg@10"] = {name: round(float(np.mean([t["test"][name] for t in trials])), 4)
                           for name in trials[0]["test"]}
    return out


def markdown_table(results: dict) -> str:
    """One row per dataset, candidate set and size: each method's mean regret and share of test-best picks."""
    lines = ["| dataset | stacks | n | test BM25 / zero-shot hybrid | " +
             " | ".join(f"{m}: regret, best" for m in METHODS) + " |", "|---|---|---|---|" + "---|" * len(METHODS)]
    for name, data in results.items():
        for set_name, sizes in data["sets"].items():
            for n, row in sizes.items():
                test = row["test_ndcg@10"]
                cells = [f"{row[m]['mean_regret']:.4f}, {row[m]['picked_test_best']:.0%}" for m in METHODS]
                lines.append(f"| {name} | {set_name} | {n} | {test['BM25']:.3f} / {test['zero-shot hybrid']:.3f} | "
                             + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--es-url")
    parser.add_argument("--port", type=int, default=9635, help="port of the node started when --es-url is absent")
    parser.add_argument("--datasets", default="cranfield,npl")
    parser.add_argument("--sizes", default="15,30,60,120")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--json")
    parser.add_argument("--table-from", help="print the markdown table of an earlier run's --json and exit")
    args = parser.parse_args()
    if args.table_from:
        print(markdown_table(json.loads(Path(args.table_from).read_text())))
        return
    print("loadavg before:", Path("/proc/loadavg").read_text().strip())
    node = None
    if not args.es_url:
        from searchtune.nodes.elasticsearch_node import elasticsearch_node

        node = elasticsearch_node(name="choose-bench", port=args.port, heap="768m")
        args.es_url = node.start()
    client = es_client(args.es_url)
    results: dict = {}
    try:
        for name in args.datasets.split(","):
            qrels, bm25, knn, timing = runs_for(name, shared_datasets_dir() / DATASETS[name], client, args.max_length)
            ids = judged_ids(qrels)
            every = candidates(qrels, bm25, knn)
            results[name] = {"timing": timing, "judged_queries": len(ids), "sets": {}}
            for set_name, names in CANDIDATE_SETS.items():
                cands = [c for c in every if c.name in names]
                results[name]["sets"][set_name] = sizes = {}
                for n in (int(s) for s in args.sizes.split(",")):
                    if len(ids) - n < 20:
                        continue
                    started = time.perf_counter()
                    trials = [one_trial(qrels, cands, ids, n, seed) for seed in range(args.seeds)]
                    sizes[n] = summary = summarise(trials)
                    print(f"{name} [{set_name}] n={n} ({len(ids) - n} test queries, {args.seeds} seeds, "
                          f"{time.perf_counter() - started:.0f}s): test {summary['test_ndcg@10']}", flush=True)
                    for method in METHODS:
                        print(f"   {method:<20} {summary[method]}", flush=True)
    finally:
        if node is not None:
            node.stop()
    print("loadavg after:", Path("/proc/loadavg").read_text().strip())
    print(markdown_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
