"""Benchmark: zero-shot hybrid retrieval on SciFact through the gateway, against BM25 measured in the same run.

1. Raw embedding throughput of the model in-process on a sample of the corpus (docs/s), then the whole corpus
   indexed with vectors through `searchtune`'s builder (int8_hnsw) and its docs/s (target: >= 80 % of raw).
2. The same vectors in a float ``hnsw`` index (vectors reused, not re-embedded), to decide int8 vs float
   (int8 is kept if test NDCG@10 is within 0.005).
3. The linear fusion weight tuned on (a bounded number of) train queries, in-process, never on test.
4. `searchtune serve` (the same model) as the embedding endpoint, the gateway with pipeline ``hybrid`` in front of
   the node: every test query through ``/{index}/_search?search_pipeline=hybrid`` -> NDCG@10 / Recall@100 vs
   BM25 direct (targets 0.70 / 0.95).
5. Latency, size 10, BM25 direct vs hybrid through the gateway, at concurrency 1 (interleaved) and 8:
   p50 / p99 (targets: hybrid p50 <= BM25 p50 + 25 ms, p99 <= BM25 p99 + 60 ms).

    .venv/bin/python benchmarks/hybrid_scifact.py --es-url http://127.0.0.1:9200 [--json out.json]
        [--raw-sample 512] [--tune-queries 300] [--latency-requests 200] [--max-length 256]
        [--serve-backend torch|openvino|onnx|auto]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402

from searchtune.config import shared_datasets_dir  # noqa: E402
from searchtune.data import load_dataset  # noqa: E402
from searchtune.eval.hybrid import es_knn_run, latency_summary, tune_hybrid_weight  # noqa: E402
from searchtune.eval.metrics import evaluate  # noqa: E402
from searchtune.eval.pipeline_run import search_through_pipeline  # noqa: E402
from searchtune.gateway.process import start_gateway_process  # noqa: E402
from searchtune.search.client import es_client  # noqa: E402
from searchtune.search.retrieval import bm25_query, bm25_search  # noqa: E402
from searchtune.serve.process import start_server_process  # noqa: E402
from searchtune.vectors.build import build_vector_index  # noqa: E402
from searchtune.vectors.embedders import RememberingEmbedder, open_embedder  # noqa: E402
from searchtune.vectors.fusion import Fusion, fuse_runs  # noqa: E402

FIELDS = ["title", "text"]


def load_avg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


async def timed_searches(url: str, path: str, bodies: list[dict], concurrency: int, params=None) -> list[float]:
    latencies: list[float] = []
    queue = list(bodies)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        async def worker():
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                response = await client.post(path, json=body, params=params)
                latencies.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text[:300]
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _interleaved(es_url, gw_url, index, bodies) -> tuple[list[float], list[float]]:
    """Concurrency 1, keep-alive, direct and gateway alternating request by request so drift hits both alike."""
    direct, hybrid = [], []
    with httpx.Client(base_url=es_url, timeout=60) as d, httpx.Client(base_url=gw_url, timeout=60) as g:
        for body in bodies:
            for client, out, params in ((d, direct, None), (g, hybrid, {"search_pipeline": "hybrid"})):
                started = time.perf_counter()
                response = client.post(f"/{index}/_search", json=body, params=params)
                out.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text[:300]
    return direct, hybrid


def latency_at(es_url, gw_url, index, texts, concurrency, requests) -> dict:
    """Size-10 searches showing titles (what a result page asks for)."""
    bodies = [{"query": bm25_query(t, FIELDS), "size": 10, "_source": ["title"]} for t in texts][:requests]
    if concurrency == 1:
        direct, hybrid = _interleaved(es_url, gw_url, index, bodies)
    else:
        direct = asyncio.run(timed_searches(es_url, f"/{index}/_search", bodies, concurrency))
        hybrid = asyncio.run(timed_searches(gw_url, f"/{index}/_search", bodies, concurrency,
                                             {"search_pipeline": "hybrid"}))
    d, h = latency_summary(direct), latency_summary(hybrid)
    return {"bm25_direct": d, "hybrid_gateway": h, "p50_added_ms": round(h["p50"] - d["p50"], 2),
            "p99_added_ms": round(h["p99"] - d["p99"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--es-url", default=os.environ.get("SEARCHTUNE_ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--model", default=None, help="embedding model (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--raw-sample", type=int, default=512)
    parser.add_argument("--tune-queries", type=int, default=300)
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--max-docs", type=int, default=None, help="dry runs only: a corpus prefix")
    parser.add_argument("--max-test-queries", type=int, default=None, help="dry runs only")
    parser.add_argument("--serve-backend", default="torch",
                        help="backend of the embedding endpoint the gateway calls (torch, openvino, onnx, auto)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report: dict = {"load_start": load_avg()}
    ds = load_dataset(Path(shared_datasets_dir()) / "scifact" / "beir_format_derived")
    client = es_client(args.es_url)
    embedder = open_embedder(args.model, max_length=args.max_length)
    docs = list(ds.corpus.values())[:args.max_docs]
    embedder.embed([d.full_text for d in docs[:16]])  # warm up
    started = time.perf_counter()
    embedder.embed([d.full_text for d in docs[16:16 + args.raw_sample]])
    raw = args.raw_sample / (time.perf_counter() - started)
    alias = f"b-hybrid-{uuid.uuid4().hex[:6]}"
    remembering = RememberingEmbedder(embedder)  # the float index reuses the int8 build's vectors
    built = build_vector_index(client, alias, docs, remembering, total=len(docs), quantization="int8")
    float_alias = alias + "-float"
    build_vector_index(client, float_alias, docs, remembering, total=len(docs), quantization="float")
    report["indexing"] = {"raw_docs_per_s": round(raw, 2), "index_docs_per_s": round(built.docs_per_second, 2),
                          "ratio": round(built.docs_per_second / raw, 3), "docs": built.count,
                          "seconds": round(built.seconds, 1)}
    print(json.dumps(report["indexing"]), flush=True)
    test_q = dict(list(ds.split_queries("test").items())[:args.max_test_queries])
    test_qrels = {q: ds.split_qrels("test")[q] for q in test_q}
    train_q = dict(list(ds.split_queries("train").items())[:args.tune_queries])
    train_qrels = {q: ds.split_qrels("train")[q] for q in train_q}
    bm25_train, _ = bm25_search(client, alias, train_q, top_k=100)
    choice = tune_hybrid_weight(train_qrels, bm25_train, es_knn_run(client, alias, "embedding", embedder, train_q).run)
    weight = choice.weight
    bm25_test, _ = bm25_search(client, alias, test_q, top_k=100)
    quant = {}
    for name, index in (("int8_hnsw", alias), ("hnsw", float_alias)):
        knn = es_knn_run(client, index, "embedding", embedder, test_q)
        quant[name] = evaluate(test_qrels, fuse_runs(bm25_test, knn.run, Fusion("linear", weight), 100)).aggregate
    report["quantization"] = {k: round(v["NDCG@10"], 4) for k, v in quant.items()}
    report["quantization"]["int8_within_0.005"] = abs(quant["int8_hnsw"]["NDCG@10"] - quant["hnsw"]["NDCG@10"]) <= 0.005
    report["weight"] = {"value": weight, "tuned_on": f"train[:{len(train_q)}]", "train_ndcg@10": round(choice.value, 4)}
    print(json.dumps({"quantization": report["quantization"], "weight": report["weight"]}), flush=True)
    embedder.close()

    precision = ["--precision", "fp32"] if os.environ.get("BENCH_FP32") else []
    report["serve_backend"] = args.serve_backend
    server = start_server_process(args.model or _base(), backend=args.serve_backend,
                                  extra_args=["--max-length", str(args.max_length), *precision])
    pipelines = f"b-hy-pipelines-{uuid.uuid4().hex[:6]}"
    try:
        admin_key = uuid.uuid4().hex
        with start_gateway_process(args.es_url, port=0, timeout_s=2.0, admin_key=admin_key,
                                   extra_args=["--pipeline-index", pipelines]) as gateway:
            httpx.put(f"{gateway.url}/_search/pipeline/hybrid", json={"request_processors": [{"hybrid": {
                "endpoint": f"{server.url}/v1/embeddings", "k": 100, "num_candidates": 200,
                "fusion": {"method": "linear", "weight": weight}, "timeout_ms": 2000}}]},
                      headers={"X-Searchtune-Admin-Key": admin_key}).raise_for_status()
            through = search_through_pipeline(gateway.url, alias, "hybrid", test_q, fields=FIELDS, size=100)
            assert not through.errors, list(through.errors.values())[:2]
            bm25 = evaluate(test_qrels, bm25_test).aggregate
            hybrid = evaluate(test_qrels, through.run).aggregate
            report["quality"] = {
                "bm25": {"NDCG@10": round(bm25["NDCG@10"], 4), "Recall@100": round(bm25["Recall@100"], 4)},
                "hybrid_gateway": {"NDCG@10": round(hybrid["NDCG@10"], 4), "Recall@100": round(hybrid["Recall@100"], 4),
                                   "fallbacks": through.fallbacks},
                "targets": {"NDCG@10": 0.70, "Recall@100": 0.95}}
            print(json.dumps(report["quality"]), flush=True)
            texts = [q.text for q in test_q.values()]
            report["latency"] = {f"c{c}": latency_at(args.es_url, gateway.url, alias, texts, c, args.latency_requests)
                                 for c in (1, 8)}
            report["latency"]["targets"] = {"p50_added_ms": 25, "p99_added_ms": 60}
            print(json.dumps(report["latency"]), flush=True)
    finally:
        server.stop()
        client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
        client.indices.delete(index=pipelines, ignore_unavailable=True)
    report["load_end"] = load_avg()
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _base() -> str:
    from searchtune.models import default_base_model

    return default_base_model()


if __name__ == "__main__":
    main()
