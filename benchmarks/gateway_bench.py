"""Benchmark: what the gateway adds to a search when no rerank runs (pure proxy path), against the cluster direct.

Indexes a small real subset of SciFact into ``t-gw-bench-<hex>``, starts ``searchtune gateway`` as a subprocess and
runs the same BM25 searches (SciFact queries) both ways:

* latency: sequential, keep-alive, direct and gateway interleaved request by request so drift hits both alike;
  p50/p99 of each and of the paired difference (target: p50 overhead < 2 ms);
* throughput: bounded loops (request count and a time cap) at concurrency 1 and 16.

Optionally (``--with-model``) also times searches reranked by the real model server (top_k 10).

    .venv/bin/python benchmarks/gateway_bench.py --es-url http://127.0.0.1:9200 [--requests 400] [--with-model]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402

from searchtune.config import es_url as default_es_url  # noqa: E402
from searchtune.config import shared_datasets_dir  # noqa: E402
from searchtune.search.client import es_client  # noqa: E402
from searchtune.gateway.process import start_gateway_process  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def load_subset(docs: int, queries: int) -> tuple[list[dict], list[str]]:
    base = shared_datasets_dir()
    if base is None:
        sys.exit("shared datasets not found: set SEARCHTUNE_DATASETS")
    folder = Path(base) / "scifact" / "beir_format_derived"
    with open(folder / "corpus.jsonl") as handle:
        corpus = [json.loads(line) for _, line in zip(range(docs), handle)]
    with open(folder / "queries.jsonl") as handle:
        texts = [json.loads(line)["text"] for _, line in zip(range(queries), handle)]
    return [{"title": d.get("title", ""), "text": d.get("text", "")} for d in corpus], texts


def body_for(query: str) -> dict:
    return {"query": {"multi_match": {"query": query, "fields": ["title^2", "text"]}}, "size": 10}


def latency(direct: str, gateway: str, index: str, queries: list[str], n: int, warmup: int,
            params: dict | None = None) -> dict:
    times: dict[str, list[float]] = {"direct": [], "gateway": []}
    with httpx.Client(timeout=30) as client:
        for i in range(n + warmup):
            payload = json.dumps(body_for(queries[i % len(queries)])).encode()
            order = [("direct", direct, None), ("gateway", gateway, params)]
            if i % 2:
                order.reverse()
            for name, base, extra in order:
                began = time.perf_counter()
                response = client.post(f"{base}/{index}/_search", content=payload, params=extra,
                                       headers={"content-type": "application/json"})
                elapsed = (time.perf_counter() - began) * 1000
                response.raise_for_status()
                if i >= warmup:
                    times[name].append(elapsed)
    diffs = [g - d for g, d in zip(times["gateway"], times["direct"])]
    return {"direct_p50_ms": percentile(times["direct"], 50), "direct_p99_ms": percentile(times["direct"], 99),
            "gateway_p50_ms": percentile(times["gateway"], 50), "gateway_p99_ms": percentile(times["gateway"], 99),
            "overhead_p50_ms": percentile(times["gateway"], 50) - percentile(times["direct"], 50),
            "paired_overhead_median_ms": statistics.median(diffs),
            "overhead_p99_ms": percentile(times["gateway"], 99) - percentile(times["direct"], 99), "n": n}


async def _loop(client: httpx.AsyncClient, base: str, index: str, payloads: list[bytes], concurrency: int,
                total: int, cap_s: float) -> tuple[int, float]:
    """(requests done, seconds) of one bounded loop: ``total`` requests or ``cap_s`` seconds, whichever first."""
    done = 0
    deadline = time.perf_counter() + cap_s
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal done
        for i in counter:
            if time.perf_counter() > deadline:
                return
            response = await client.post(f"{base}/{index}/_search", content=payloads[i % len(payloads)],
                                         headers={"content-type": "application/json"})
            response.raise_for_status()
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - began


async def _throughput(direct: str, gateway: str, index: str, queries: list[str], concurrency: int, total: int,
                      cap_s: float, rounds: int = 4) -> dict[str, float]:
    """Direct and gateway in alternating rounds, so load from other processes hits both sides alike."""
    payloads = [json.dumps(body_for(q)).encode() for q in queries]
    sums = {"direct": [0, 0.0], "gateway": [0, 0.0]}
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        for r in range(rounds):
            sides = [("direct", direct), ("gateway", gateway)]
            for name, base in (sides if r % 2 == 0 else sides[::-1]):
                done, seconds = await _loop(client, base, index, payloads, concurrency, total // rounds,
                                            cap_s / rounds)
                sums[name][0] += done
                sums[name][1] += seconds
    return {name: count / seconds for name, (count, seconds) in sums.items()}


def throughput(direct: str, gateway: str, index: str, queries: list[str], total: int, cap_s: float) -> dict:
    out = {}
    for concurrency in (1, 16):
        rates = asyncio.run(_throughput(direct, gateway, index, queries, concurrency, total, cap_s))
        out[f"direct_c{concurrency}_rps"] = rates["direct"]
        out[f"gateway_c{concurrency}_rps"] = rates["gateway"]
        out[f"ratio_c{concurrency}"] = rates["gateway"] / rates["direct"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--es-url", default=default_es_url())
    parser.add_argument("--requests", type=int, default=400, help="Sequential requests per side for latency.")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--throughput-requests", type=int, default=600, help="Requests per side and concurrency (in 4 alternating rounds).")
    parser.add_argument("--cap-seconds", type=float, default=20.0, help="Time cap per side and concurrency.")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--with-model", action="store_true", help="Also time reranked searches (real model server).")
    parser.add_argument("--json", action="store_true", help="Print only the JSON result.")
    args = parser.parse_args()

    es = es_client(args.es_url)
    docs, queries = load_subset(args.docs, 200)
    index = f"t-gw-bench-{uuid.uuid4().hex[:8]}"
    pipelines = f"t-gw-bench-pipelines-{uuid.uuid4().hex[:8]}"
    es.indices.create(index=index, settings={"number_of_shards": 1, "number_of_replicas": 0})
    operations: list[dict] = []
    for i, doc in enumerate(docs):
        operations += [{"index": {"_index": index, "_id": str(i)}}, doc]
    es.bulk(operations=operations, refresh=True)
    result: dict = {"es_url": args.es_url, "docs": len(docs)}
    try:
        admin_key = uuid.uuid4().hex
        with start_gateway_process(args.es_url, port=0, extra_args=["--pipeline-index", pipelines],
                                   admin_key=admin_key) as gateway:
            result["latency_no_rerank"] = latency(args.es_url, gateway.url, index, queries, args.requests, args.warmup)
            result["throughput_no_rerank"] = throughput(args.es_url, gateway.url, index, queries,
                                                        args.throughput_requests, args.cap_seconds)
            if args.with_model:
                from searchtune.models import default_base_model
                from searchtune.serve.process import start_server_process

                with start_server_process(default_base_model(), port=0, extra_args=["--max-length", "128"]) as server:
                    pipeline = {"request_processors": [{"neural_rerank": {
                        "endpoint": f"{server.url}/v1/rerank", "top_k": 10, "timeout_ms": 5000}}]}
                    httpx.put(f"{gateway.url}/_search/pipeline/bench", json=pipeline,
                              headers={"X-Searchtune-Admin-Key": admin_key}).raise_for_status()
                    result["latency_rerank_top10"] = latency(args.es_url, gateway.url, index, queries,
                                                             max(20, args.requests // 10), 5,
                                                             params={"search_pipeline": "bench"})
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
        es.indices.delete(index=pipelines, ignore_unavailable=True)

    if args.json:
        print(json.dumps(result, indent=2))
        return
    lat = result["latency_no_rerank"]
    thr = result["throughput_no_rerank"]
    print(f"gateway overhead, rerank disabled ({lat['n']} sequential searches per side, {len(docs)} SciFact docs)")
    print(f"  direct  p50 {lat['direct_p50_ms']:.2f} ms  p99 {lat['direct_p99_ms']:.2f} ms")
    print(f"  gateway p50 {lat['gateway_p50_ms']:.2f} ms  p99 {lat['gateway_p99_ms']:.2f} ms")
    print(f"  added   p50 {lat['overhead_p50_ms']:.2f} ms (paired median {lat['paired_overhead_median_ms']:.2f} ms, "
          f"target < 2 ms: {'PASS' if lat['overhead_p50_ms'] < 2 else 'MISS'})  p99 {lat['overhead_p99_ms']:.2f} ms")
    for c in (1, 16):
        print(f"  throughput c={c:<2}  direct {thr[f'direct_c{c}_rps']:.0f} req/s  gateway "
              f"{thr[f'gateway_c{c}_rps']:.0f} req/s  ratio {thr[f'ratio_c{c}']:.2f}")
    if "latency_rerank_top10" in result:
        rr = result["latency_rerank_top10"]
        print(f"  with rerank (top_k 10, MiniLM on CPU): gateway p50 {rr['gateway_p50_ms']:.1f} ms, "
              f"p99 {rr['gateway_p99_ms']:.1f} ms (direct BM25 p50 {rr['direct_p50_ms']:.1f} ms)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
