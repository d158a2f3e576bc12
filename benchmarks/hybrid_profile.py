"""Profile: where a hybrid search's time and CPU go, on an index that already has vectors.

Runs ``searchtune serve`` (``--serve-backend``) and the gateway with a ``hybrid`` pipeline in front of the node,
then, on SciFact test queries:

1. concurrency 1: each hybrid search's own timings from its ``searchtune`` field (embed, kNN, source fetch) beside
   the end-to-end latency, and the cluster-side parts measured directly (BM25 of the window, the kNN search, the
   ``_mget``) so the gateway's own share is the remainder;
2. concurrency 8: CPU seconds per search of each process (Elasticsearch, gateway, model server) from ``/proc``,
   against direct BM25 at the same concurrency. On 2 cores, CPU per search is what sets latency under load.

    .venv/bin/python benchmarks/hybrid_profile.py --index prof [--serve-backend openvino] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402
import psutil  # noqa: E402

from searchtune.config import shared_datasets_dir  # noqa: E402
from searchtune.data import load_dataset  # noqa: E402
from searchtune.gateway.process import start_gateway_process  # noqa: E402
from searchtune.search.retrieval import bm25_query  # noqa: E402
from searchtune.serve.process import start_server_process  # noqa: E402

from hybrid_scifact import timed_searches  # noqa: E402  (this folder: the same bounded load loop)

FIELDS = ["title", "text"]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _summary(values: list[float]) -> dict:
    return {"p50": _p(values, 0.5), "p99": _p(values, 0.99), "mean": round(statistics.fmean(values), 2)}


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.NoSuchProcess:
                pass
        out[name] = total
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--es-url", default=os.environ.get("SEARCHTUNE_ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--index", required=True, help="an alias built by `searchtune index --vectors`")
    parser.add_argument("--model", default=None)
    parser.add_argument("--serve-backend", default="openvino")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--weight", type=float, default=0.55)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    from searchtune.models import default_base_model

    ds = load_dataset(Path(shared_datasets_dir()) / "scifact" / "beir_format_derived")
    texts = [q.text for q in ds.split_queries("test").values()][:args.requests]
    bodies = [{"query": bm25_query(t, FIELDS), "size": 10, "_source": ["title"]} for t in texts]
    es_pid = next(c.pid for c in psutil.net_connections("tcp")
                  if c.status == "LISTEN" and c.laddr.port == int(args.es_url.rsplit(":", 1)[1]))
    report: dict = {"load_start": os.getloadavg(), "serve_backend": args.serve_backend}
    server = start_server_process(args.model or default_base_model(), backend=args.serve_backend,
                                  extra_args=["--max-length", "256"])
    admin_key = uuid.uuid4().hex
    pipelines = f"prof-pipelines-{uuid.uuid4().hex[:6]}"
    try:
        with start_gateway_process(args.es_url, port=0, timeout_s=2.0, admin_key=admin_key,
                                   extra_args=["--pipeline-index", pipelines]) as gateway:
            httpx.put(f"{gateway.url}/_search/pipeline/hybrid", json={"request_processors": [{"hybrid": {
                "endpoint": f"{server.url}/v1/embeddings", "k": 100, "num_candidates": 200,
                "fusion": {"method": "linear", "weight": args.weight}, "timeout_ms": 2000}}]},
                      headers={"X-Searchtune-Admin-Key": admin_key}).raise_for_status()
            parts: dict[str, list[float]] = {}
            with httpx.Client(base_url=gateway.url, timeout=60) as g, httpx.Client(base_url=args.es_url, timeout=60) as d:
                for body in bodies[:20]:  # warm-up
                    g.post(f"/{args.index}/_search", json=body, params={"search_pipeline": "hybrid"})
                for body in bodies:
                    began = time.perf_counter()
                    answer = g.post(f"/{args.index}/_search", json=body, params={"search_pipeline": "hybrid"}).json()
                    parts.setdefault("hybrid_total_ms", []).append((time.perf_counter() - began) * 1000)
                    info = answer["searchtune"]
                    assert info["hybrid"], info
                    for key in ("embed_ms", "knn_ms", "source_ms"):
                        parts.setdefault(key, []).append(info[key])
                    for name, path, request in (
                            ("direct_bm25_size10_ms", f"/{args.index}/_search", body),
                            ("direct_bm25_window100_ms", f"/{args.index}/_search",
                             {"query": body["query"], "size": 100, "_source": False}),
                            ("direct_mget10_ms", "/_mget",
                             {"docs": [{"_index": hit["_index"], "_id": hit["_id"], "_source": ["title"]}
                                       for hit in answer["hits"]["hits"]]})):
                        began = time.perf_counter()
                        d.post(path, json=request).raise_for_status()
                        parts.setdefault(name, []).append((time.perf_counter() - began) * 1000)
                    began = time.perf_counter()
                    server_answer = httpx.post(f"{server.url}/v1/embeddings", json={"input": texts[0], "model": "model"})
                    parts.setdefault("embed_direct_new_conn_ms", []).append((time.perf_counter() - began) * 1000)
                    server_answer.raise_for_status()
            report["c1"] = {k: _summary(v) for k, v in parts.items()}
            print(json.dumps(report["c1"], indent=1), flush=True)
            pids = {"elasticsearch": es_pid, "gateway": gateway.process.pid, "model_server": server.process.pid}
            for name, url, params in (("bm25_direct", args.es_url, None),
                                      ("hybrid_gateway", gateway.url, {"search_pipeline": "hybrid"})):
                before, began = _cpu(pids), time.perf_counter()
                latencies = asyncio.run(timed_searches(url, f"/{args.index}/_search", bodies, 8, params))
                wall = time.perf_counter() - began
                after = _cpu(pids)
                report[f"c8_{name}"] = {"latency": _summary(latencies), "searches_per_s": round(len(bodies) / wall, 1),
                                        "cpu_ms_per_search": {k: round((after[k] - before[k]) * 1000 / len(bodies), 2)
                                                              for k in pids}}
                print(name, json.dumps(report[f"c8_{name}"]), flush=True)
    finally:
        server.stop()
        httpx.delete(f"{args.es_url}/{pipelines}")
    report["load_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
