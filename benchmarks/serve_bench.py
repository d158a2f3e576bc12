"""Serving benchmark: pairs/s and p50/p99 latency for reranking 50 SciFact documents per request, at concurrency
1, 8 and 32, for (a) a naive FastAPI + CrossEncoder.predict handler, (b) `searchtune serve` torch fp32 and bf16,
(c) `searchtune serve` ONNX int8 and OpenVINO bf16, (d) Infinity (`infinity-emb`, from a separate venv) when it is installed; plus
NDCG@10 on SciFact test for bf16 and int8 vs fp32, each server's resident memory with the model loaded, and
`/health` latency (p50/p99/max) of our server while three 9 MB requests are tokenized and scored.
The load average (`/proc/loadavg`) is printed before and after every system: on a shared machine it says how much
of the CPU the figures had.

Everything runs in one process tree on one machine, on the same model and the same requests, one server at a time.
The documents are BM25's top 50 from the ``scifact`` index when Elasticsearch answers (else judged documents padded
with a fixed random sample of the corpus, which is said in the output).

    .venv/bin/python benchmarks/serve_bench.py                       # all systems, defaults below
    .venv/bin/python benchmarks/serve_bench.py --requests 100 --ndcg-queries 100 --json /tmp/serve_bench.json

The default cross-encoder is all-MiniLM-L6-v2 with an untrained one-logit head (speed is what matters here; its
NDCG is not meaningful), so NDCG is also reported for the embedding model all-MiniLM-L6-v2 scoring by cosine through
the same backends, where fp32 vs bf16 vs int8 differences are meaningful. Pass --cross-encoder for a trained one.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

DOCS_PER_REQUEST = 50
OURS = ("torch-fp32", "torch-bf16", "onnx-int8", "openvino-bf16")  # `searchtune serve` configurations
INFINITY_BIN = Path(os.environ.get("INFINITY_BIN", "/tmp/infvenv/bin/infinity_emb"))


# --------------------------------------------------------------------------- workload
def load_workload(es_url: str, index: str, max_queries: int | None):
    from searchtune.config import shared_datasets_dir
    from searchtune.data import load_dataset

    ds = load_dataset(shared_datasets_dir() / "scifact" / "beir_format_derived")
    qrels = ds.split_qrels("test")
    queries = ds.split_queries("test")
    source = f"BM25 top {DOCS_PER_REQUEST} from Elasticsearch index '{index}'"
    try:
        from searchtune.search.client import es_client
        from searchtune.search.retrieval import bm25_search

        run, docs = bm25_search(es_client(es_url), index, queries, fields=["title", "text"],
                                top_k=DOCS_PER_REQUEST, with_source=True)
        candidates = {qid: list(ranked) for qid, ranked in run.items()}
        texts = {did: d.full_text for did, d in docs.items()}
    except Exception as exc:  # no cluster: judged documents + a fixed sample, still 50 real SciFact documents
        source = f"judged + fixed random sample (Elasticsearch unavailable: {type(exc).__name__})"
        rng = random.Random(0)
        ids = sorted(ds.corpus)
        texts = {did: d.full_text for did, d in ds.corpus.items()}
        candidates = {}
        for qid in queries:
            chosen = list(qrels.get(qid, {}))[:DOCS_PER_REQUEST]
            chosen += [d for d in rng.sample(ids, DOCS_PER_REQUEST * 2) if d not in chosen]
            candidates[qid] = chosen[:DOCS_PER_REQUEST]
    qids = [q for q in queries if len(candidates.get(q, [])) == DOCS_PER_REQUEST]
    if max_queries:
        qids = qids[:max_queries]
    requests = [(qid, queries[qid].text, candidates[qid]) for qid in qids]
    return requests, texts, qrels, source


# --------------------------------------------------------------------------- processes
def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        todo += children.get(p, [])
    return total / 1024


class Proc:
    def __init__(self, argv: list[str], url: str, ready_path: str, env: dict | None = None):
        self.log = tempfile.NamedTemporaryFile(prefix="serve-bench-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                     start_new_session=True)
        self.url = url
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{argv[:3]} exited:\n{Path(self.log.name).read_text()[-3000:]}")
            try:
                if httpx.get(url + ready_path, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{argv[:3]} not ready")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def naive_server_main(model: str, port: int, max_length: int) -> None:
    """(a) The baseline: what a first version of a rerank endpoint usually looks like."""
    import uvicorn
    from fastapi import Body, FastAPI
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(model, max_length=max_length, device="cpu")
    app = FastAPI()

    @app.post("/rerank")
    def rerank(body: dict = Body(...)) -> list[dict]:
        scores = ce.predict([(body["query"], t) for t in body["texts"]], show_progress_bar=False)
        return [{"index": i, "score": float(s)} for i, s in enumerate(scores)]

    @app.get("/ready")
    def ready() -> dict:
        return {"ok": True}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# --------------------------------------------------------------------------- load
async def measure(url: str, path: str, body_fn, requests, texts, concurrency: int, n: int, time_cap: float) -> dict:
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        for qid, q, ids in requests[:2]:  # warm connections and caches
            await client.post(path, json=body_fn(q, [texts[d] for d in ids]))
        start = time.perf_counter()
        deadline = start + time_cap

        async def worker() -> None:
            nonlocal errors
            while True:
                i = next(counter)
                if i >= n or time.perf_counter() > deadline:
                    return
                _, q, ids = requests[i % len(requests)]
                t = time.perf_counter()
                response = await client.post(path, json=body_fn(q, [texts[d] for d in ids]))
                latencies.append(time.perf_counter() - t)
                if response.status_code != 200:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {"concurrency": concurrency, "requests": len(latencies), "errors": errors,
            "pairs_per_s": round(len(latencies) * DOCS_PER_REQUEST / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000, 1)}


async def rerank_run(url: str, path: str, body_fn, parse_fn, requests, texts, concurrency: int = 8) -> dict:
    """Rerank every query's candidates through a server; returns a run for ir-measures."""
    run: dict[str, dict[str, float]] = {}
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        async def one(qid, q, ids):
            async with sem:
                response = await client.post(path, json=body_fn(q, [texts[d] for d in ids]))
                response.raise_for_status()
                scores = parse_fn(response.json())
                run[qid] = {ids[i]: s for i, s in scores.items()}
        await asyncio.gather(*(one(*r) for r in requests))
    return run


def hf_body(q, docs):
    return {"query": q, "texts": docs}


def hf_parse(rows):
    return {r["index"]: r["score"] for r in rows}


def infinity_body(model_id):
    return lambda q, docs: {"model": model_id, "query": q, "documents": docs, "return_documents": False}


def infinity_parse(body):
    return {r["index"]: r["relevance_score"] for r in body["results"]}


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


async def health_probe(url: str, huge: int = 3, seconds: float = 30.0) -> dict:
    """``/health`` latency for ``seconds`` while ``huge`` requests of 900 x 10k-character documents are in flight
    (issue 12: the event loop must not stall while they are tokenized and queued); then the huge requests are
    abandoned (the client disconnects; their budget ends them on the server)."""
    doc = ("bone density vitamin fracture trial " * 300)[:10_000]
    body = json.dumps({"query": "vitamin d", "texts": [doc] * 900}).encode()
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=seconds + 600) as client:
        tasks = [asyncio.create_task(client.post("/rerank", content=body,
                                                 headers={"content-type": "application/json"}))
                 for _ in range(huge)]
        deadline = time.perf_counter() + seconds
        async with httpx.AsyncClient(base_url=url, timeout=60) as probe:
            while not all(t.done() for t in tasks) and time.perf_counter() < deadline:
                start = time.perf_counter()
                await probe.get("/health")
                latencies.append(time.perf_counter() - start)
                await asyncio.sleep(0.02)
        statuses = [t.result().status_code if t.done() and not t.exception() else "in flight" for t in tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    return {"probes": len(latencies), "seconds": seconds, "huge_requests": statuses,
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000, 1),
            "max_ms": round(latencies[-1] * 1000, 1)}


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cross-encoder", help="Cross-encoder folder (default: MiniLM + untrained head).")
    parser.add_argument("--max-length", type=int, default=256,
                        help="Tokens per (query, document) pair for every system.")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--requests", type=int, default=64,
                        help="Requests per point (c=1 uses an eighth, at least 4; c=32 at least 32).")
    parser.add_argument("--time-cap", type=float, default=60.0, help="Seconds per point at most.")
    parser.add_argument("--ndcg-queries", type=int, default=100, help="Test queries for NDCG (0 = all 300).")
    parser.add_argument("--ce-ndcg", action="store_true",
                        help="Also NDCG of the cross-encoder per backend (default only with --cross-encoder).")
    parser.add_argument("--systems", default="naive,torch-fp32,torch-bf16,onnx-int8,openvino-bf16,infinity")
    parser.add_argument("--skip-embedding-ndcg", action="store_true")
    parser.add_argument("--c32-only", default="",
                        help="Systems measured at the highest concurrency only (baselines on a busy machine).")
    parser.add_argument("--health-probe", default="torch-bf16",
                        help="System whose /health is probed under huge requests ('' to skip).")
    parser.add_argument("--probe-only", action="store_true",
                        help="Only the /health probe of --health-probe (no load points, no NDCG).")
    parser.add_argument("--embedding-backends", default="torch-fp32,torch-bf16,onnx-int8,openvino-bf16",
                        help="Backends for the embedding-model NDCG (in-process, same code as the server).")
    parser.add_argument("--es-url", default=os.environ.get("SEARCHTUNE_ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--index", default="scifact")
    parser.add_argument("--json", type=Path, help="Write all figures here as JSON.")
    parser.add_argument("--naive-server", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_server:
        return naive_server_main(args.naive_server, args.port, args.max_length)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from searchtune.eval.metrics import evaluate
    from searchtune.models import default_base_model
    from searchtune.serve.process import free_port, start_server_process

    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    home = {"SEARCHTUNE_HOME": str(work / "home")}
    model = args.cross_encoder
    if not model:
        import torch
        from sentence_transformers import CrossEncoder

        torch.manual_seed(0)
        model = str(work / "minilm-ce")
        CrossEncoder(default_base_model(), num_labels=1, max_length=args.max_length).save_pretrained(model)
    requests, texts, qrels, source = load_workload(args.es_url, args.index, None)
    ndcg_requests = requests[:args.ndcg_queries] if args.ndcg_queries else requests
    # evaluate() counts every judged query, so score the subset against its own judgments only
    qrels = {qid: qrels[qid] for qid, _, _ in ndcg_requests if qid in qrels}
    levels = [int(c) for c in args.concurrency.split(",")]
    print(f"workload: {len(requests)} SciFact test queries x {DOCS_PER_REQUEST} docs ({source}); "
          f"model {model}; max_length {args.max_length}; {os.cpu_count()} CPUs", flush=True)

    ours = ["--max-length", str(args.max_length), "--timeout", "600"]
    systems = {
        "naive": lambda port: Proc([sys.executable, __file__, "--naive-server", model, "--port", str(port),
                                    "--max-length", str(args.max_length)], f"http://127.0.0.1:{port}", "/ready"),
        "torch-fp32": lambda port: start_server_process(model, port, "torch", [*ours, "--precision", "fp32"], env=home),
        "torch-bf16": lambda port: start_server_process(model, port, "torch", [*ours, "--precision", "bf16"], env=home),
        "onnx-int8": lambda port: start_server_process(model, port, "onnx", [*ours, "--quantize", "int8"], env=home),
        "openvino-bf16": lambda port: start_server_process(model, port, "openvino", [*ours, "--precision", "bf16"],
                                                           env=home),
        "infinity": lambda port: Proc([str(INFINITY_BIN), "v2", "--model-id", model, "--served-model-name", "ce",
                                       "--engine", "torch", "--port", str(port), "--host", "127.0.0.1",
                                       "--batch-size", "32"],
                                      f"http://127.0.0.1:{port}", "/health", env=home),
    }
    results: dict[str, dict] = {"workload": {"queries": len(requests), "docs_per_request": DOCS_PER_REQUEST,
                                             "source": source, "model": model, "max_length": args.max_length},
                                "systems": {}, "ndcg@10": {}}
    bm25_run = {qid: {d: float(-i) for i, d in enumerate(ids)} for qid, _, ids in ndcg_requests}
    results["ndcg@10"]["bm25"] = round(evaluate(qrels, bm25_run).aggregate["NDCG@10"], 4)
    for name in [n for n in args.systems.split(",") if n and n != "none"]:
        if name not in systems:
            print(f"unknown system '{name}' (known: {', '.join(systems)})")
            continue
        if name == "infinity" and not INFINITY_BIN.exists():
            print(f"infinity: skipped ({INFINITY_BIN} not found; pip install infinity-emb[server] into a venv)")
            results["systems"][name] = {"skipped": "not installed"}
            continue
        print(f"\n== {name}  (load average before: {load_average()})", flush=True)
        try:
            server = systems[name](free_port())
        except Exception as exc:
            print(f"{name}: could not start: {str(exc)[-800:]}")
            results["systems"][name] = {"skipped": str(exc)[-300:]}
            continue
        path, body_fn, parse_fn = ("/rerank", hf_body, hf_parse)
        if name == "infinity":
            path, body_fn, parse_fn = "/rerank", infinity_body("ce"), infinity_parse
        entry: dict = {"points": []}
        try:
            for c in ([] if args.probe_only else [max(levels)] if name in args.c32_only.split(",") else levels):
                n = max(args.requests // 8, 4) if c == 1 else max(args.requests, c)
                point = asyncio.run(measure(server.url, path, body_fn, requests, texts, c, n, args.time_cap))
                entry["points"].append(point)
                print(f"  c={c:>2}: {point['pairs_per_s']:>8.1f} pairs/s  p50 {point['p50_ms']:>8.1f} ms  "
                      f"p99 {point['p99_ms']:>8.1f} ms  ({point['requests']} req, {point['errors']} errors)",
                      flush=True)
            entry["rss_mb"] = round(rss_mb(server.process.pid if hasattr(server, "process") else server.pid), 1)
            print(f"  resident memory: {entry['rss_mb']} MB", flush=True)
            if name == args.health_probe:
                entry["health_under_huge_requests"] = asyncio.run(health_probe(server.url))
                print(f"  /health while 3 x 9 MB requests run: {entry['health_under_huge_requests']}", flush=True)
            if name in OURS and (args.ce_ndcg or args.cross_encoder):
                run = asyncio.run(rerank_run(server.url, path, body_fn, parse_fn, ndcg_requests, texts))
                results["ndcg@10"][f"cross-encoder/{name}"] = round(evaluate(qrels, run).aggregate["NDCG@10"], 4)
                print(f"  NDCG@10 (cross-encoder, {len(ndcg_requests)} queries): "
                      f"{results['ndcg@10'][f'cross-encoder/{name}']}", flush=True)
        except Exception as exc:  # report and go on with the next system
            print(f"  {name} failed: {type(exc).__name__}: {exc}", flush=True)
            entry["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            server.stop()
        entry["load_average_after"] = load_average()
        print(f"  load average after: {entry['load_average_after']}", flush=True)
        results["systems"][name] = entry

    if not args.skip_embedding_ndcg and not args.probe_only:
        embedding_ndcg(results, ndcg_requests, texts, qrels, args.max_length, home, args.embedding_backends.split(","))
    summarize(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")


def embedding_ndcg(results, requests, texts, qrels, max_length, home, labels) -> None:
    """NDCG@10 of all-MiniLM-L6-v2 (cosine rerank of the same candidates) through each backend, in-process."""
    os.environ.update(home)
    from searchtune.eval.metrics import evaluate
    from searchtune.models import default_base_model
    from searchtune.serve.backends import load_backend
    from searchtune.serve.vectors import unit_rows

    for label, kwargs in (("torch-fp32", dict(backend="torch", precision="fp32")),
                          ("torch-bf16", dict(backend="torch", precision="bf16")),
                          ("onnx-int8", dict(backend="onnx", quantize="int8")),
                          ("openvino-bf16", dict(backend="openvino", precision="bf16"))):
        if label not in labels:
            continue
        backend = load_backend(default_base_model(), max_length=max_length, **kwargs)
        run = {}
        for qid, q, ids in requests:  # the server's path: tokenize once, run from ids, cosine of unit vectors
            vectors = unit_rows(np.asarray(backend.run(backend.tokenizer.texts([q, *[texts[d] for d in ids]]))))
            run[qid] = {d: float(vectors[i + 1] @ vectors[0]) for i, d in enumerate(ids)}
        results["ndcg@10"][f"embedding/{label}"] = round(evaluate(qrels, run).aggregate["NDCG@10"], 4)
        print(f"  NDCG@10 (MiniLM embedding, {label}): {results['ndcg@10'][f'embedding/{label}']}", flush=True)
        backend.close()


def summarize(results: dict) -> None:
    def at(name: str, c: int) -> float | None:
        for p in results["systems"].get(name, {}).get("points", []):
            if p["concurrency"] == c:
                return p["pairs_per_s"]
        return None

    print("\n== summary: pairs/s (p50 / p99 ms) per concurrency")
    for name, entry in results["systems"].items():
        cells = [f"c={p['concurrency']}: {p['pairs_per_s']} ({p['p50_ms']:.0f} / {p['p99_ms']:.0f})"
                 for p in entry.get("points", [])]
        print(f"  {name:<11} " + ("  ".join(cells) or entry.get("skipped", entry.get("error", "no figures"))))
    print("\n== summary (pairs/s at concurrency 32)")
    naive, inf = at("naive", 32), at("infinity", 32)
    ours = {n: at(n, 32) for n in OURS if at(n, 32)}
    for name, value in ours.items():
        parts = [f"{name}: {value}"]
        if naive:
            parts.append(f"{value / naive:.2f}x naive")
        if inf:
            parts.append(f"{value / inf:.2f}x infinity")
        print("  " + ", ".join(parts))
    nd = results["ndcg@10"]
    for kind in ("cross-encoder", "embedding"):
        base = nd.get(f"{kind}/torch-fp32")
        if base is not None:
            deltas = {k.split("/")[1]: round(v - base, 4) for k, v in nd.items() if k.startswith(kind + "/")}
            print(f"  NDCG@10 {kind}: fp32 {base}; delta vs fp32 {deltas}")
    results["ratios_c32"] = {n: {"vs_naive": round(v / naive, 2) if naive else None,
                                 "vs_infinity": round(v / inf, 2) if inf else None} for n, v in ours.items()}


if __name__ == "__main__":
    main()
