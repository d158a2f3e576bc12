"""Benchmark: hard-negative mining throughput on SciFact train (809 queries) and the false-negative guard's drop rate.

Needs an index holding the SciFact corpus (default ``scifact``, as on the dev node; create one with
``searchtune index <scifact dir> --index scifact``). Runs, in one process against the same cluster:

* baseline: bare BM25 retrieval of the same queries (``bm25_search``, same top-k, with ``_source``), i.e. what mining
  cannot be faster than;
* mining with the default guard (margin + ranked-above-positive) and with the margin rule only.

Each configuration is run ``--repeats`` times (best time reported, after one warm-up pass of the baseline), and the
mining/baseline time ratio is printed next to queries/s and the guard's share of dropped candidates.

    .venv/bin/python benchmarks/mining.py --es-url http://127.0.0.1:9200 [--index scifact] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from searchtune.config import es_url as default_es_url
from searchtune.config import shared_datasets_dir
from searchtune.data import load_dataset
from searchtune.data.mining import DEFAULT_MARGIN, mine_negatives
from searchtune.search.client import es_client
from searchtune.search.retrieval import bm25_search
from searchtune.search.retriever import BM25Retriever


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--es-url", default=default_es_url())
    parser.add_argument("--index", default="scifact")
    parser.add_argument("--dataset", default=None, help="SciFact BEIR folder (default: shared datasets)")
    parser.add_argument("--top-k", type=int, default=30)
    parser.add_argument("--num-negatives", type=int, default=7)
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()

    path = args.dataset or shared_datasets_dir() / "scifact" / "beir_format_derived"
    ds = load_dataset(path)
    queries = ds.split_queries("train")
    client = es_client(args.es_url)
    if not client.indices.exists(index=args.index):
        print(f"index '{args.index}' not found at {args.es_url}: run `searchtune index {path} --index {args.index}`",
              file=sys.stderr)
        return 1

    bm25_search(client, args.index, queries, top_k=args.top_k, with_source=True)  # warm caches
    baseline = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        bm25_search(client, args.index, queries, top_k=args.top_k, with_source=True)
        baseline.append(time.perf_counter() - started)
    base_s = min(baseline)
    rows = {"bm25 retrieval only (baseline)": {"seconds": round(base_s, 3),
                                               "queries_per_second": round(len(queries) / base_s, 1)}}
    for label, above in (("mining, guard margin+above", True), ("mining, guard margin only", False)):
        best = None
        for _ in range(args.repeats):
            result = mine_negatives(BM25Retriever(client, args.index), ds, top_k=args.top_k, num_negatives=args.num_negatives,
                                    margin=args.margin, drop_above_positive=above)
            if best is None or result.seconds < best.seconds:
                best = result
        stats = best.stats()
        stats["ratio_to_baseline_time"] = round(best.seconds / base_s, 2)
        rows[label] = stats

    print(f"SciFact train: {len(queries)} queries, index '{args.index}' at {args.es_url}, top_k={args.top_k}, "
          f"num_negatives={args.num_negatives}, margin={args.margin}, best of {args.repeats}")
    print(f"{'configuration':34} {'q/s':>7} {'secs':>7} {'x base':>7} {'cands':>7} {'dropped':>8} {'share':>7} "
          f"{'triplets':>8} {'q w/o neg':>9}")
    for label, row in rows.items():
        print(f"{label:34} {row['queries_per_second']:>7} {row['seconds']:>7} {row.get('ratio_to_baseline_time', 1.0):>7} "
              f"{row.get('candidates', '-'):>7} {row.get('dropped_by_guard', '-'):>8} "
              f"{(format(row['drop_share'], '.1%') if 'drop_share' in row else '-'):>7} {row.get('triplets', '-'):>8} "
              f"{row.get('queries_without_negatives', '-'):>9}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
