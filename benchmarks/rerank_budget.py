"""Benchmark: how long a 10-document rerank takes on this machine's CPU, against the gateway's default budget.

Starts `searchtune serve` on the bundled MiniLM (CPU, the server's default backend), sends ``--calls`` sequential
DashScope-dialect reranks of 10 real SciFact documents (the documented pipeline's ``top_k``) and prints p50/p95/max
next to the gateway's default ``--timeout`` and the ratio between them. The budget is right when max < default.
Run with the machine's usual load (``uptime`` is printed): the figure that matters is the loaded one.

    .venv/bin/python benchmarks/rerank_budget.py [--calls 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402

from searchtune.config import shared_datasets_dir  # noqa: E402
from searchtune.gateway.defaults import DEFAULT_TIMEOUT_S  # noqa: E402
from searchtune.models import default_base_model  # noqa: E402
from searchtune.serve.process import start_server_process  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    scifact = shared_datasets_dir() / "scifact" / "beir_format_derived"
    rows = [json.loads(line) for _, line in zip(range(10 * args.calls + 10), open(scifact / "corpus.jsonl"))]
    queries = [json.loads(line)["text"] for _, line in zip(range(args.calls), open(scifact / "queries.jsonl"))]
    with start_server_process(default_base_model()) as server, httpx.Client(timeout=60) as http:
        url = f"{server.url}/api/v1/services/rerank/text-rerank/text-rerank"
        times = []
        for n, query in enumerate(queries):
            docs = [f"{r['title']}. {r['text']}" for r in rows[10 * n:10 * n + 10]]
            began = time.perf_counter()
            http.post(url, json={"input": {"query": query, "documents": docs}}).raise_for_status()
            times.append(time.perf_counter() - began)
    ordered = sorted(times)
    p50, p95 = statistics.median(times), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"10-document rerank, {len(times)} calls: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
          f"max {ordered[-1] * 1000:.0f} ms")
    print(f"default budget {DEFAULT_TIMEOUT_S:g} s = {DEFAULT_TIMEOUT_S / ordered[-1]:.1f}x the slowest call "
          f"({DEFAULT_TIMEOUT_S / p50:.1f}x p50); the former 0.5 s = {0.5 / p50:.2f}x p50")


if __name__ == "__main__":
    main()
