"""Benchmark: the distilled cross-encoder behind hybrid retrieval on SciFact, every system through the gateway.

One run, one table (issue 14): SciFact test NDCG@10 for BM25 (direct), zero-shot hybrid (all-MiniLM-L6-v2 +
BM25, weight tuned on the train dev carve), tuned hybrid (only with ``--tuned-embedder``: a tuned embedder is not
trained inside this run), the cross-encoder alone reranking the hybrid top 30, and the cross-encoder fused with the
hybrid score (its dev-tuned weight); the training time; and the p50 of reranking 20 documents at the model server.

1. The corpus is indexed with zero-shot vectors (``--index`` reuses an alias that already has them).
2. The cross-encoder is distilled from the zero-shot hybrid teacher (train queries minus a 10 % dev carve, plus
   title queries; train/distill.py), timed; ``--ce-model DIR`` reuses a model trained by an earlier run (its
   training.json gives the training time and the dev weights).
3. ``searchtune serve`` for the embedder and for the cross-encoder, the gateway with pipelines ``hybrid``,
   ``hybrid-ce`` (hybrid k 100 -> neural_rerank top_k 30, model only) and ``hybrid-ce-fused`` (bm25_weight = the
   previous stage's dev-tuned weight); every test query through each.

With ``--from-quickstart WORKDIR`` (a finished ``searchtune quickstart`` that deployed both models, its node still
up) nothing is trained: the tuned embedder is ``WORKDIR/model`` with its vectors in the quickstart's alias
(``--tuned-index``, default ``scifact``), the cross-encoder is ``WORKDIR/reranker`` (distilled from that tuned
hybrid), the zero-shot weight is the one the quickstart's stack choice tuned; the table then has every row the issue
asks for, tuned hybrid included, and the cross-encoder's rows rerank the tuned hybrid top 30 as deployed.

Servers run with ``--backend auto`` (what ``searchtune serve`` and the quickstart use: OpenVINO bf16 on AMX).

    .venv/bin/python benchmarks/rerank_scifact.py --es-url http://127.0.0.1:9200 [--index scifact]
        [--ce-model DIR] [--from-quickstart WORKDIR] [--max-test-queries N] [--latency-requests 30] [--json out.json]
"""

from __future__ import annotations

import argparse
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
from searchtune.eval.hybrid import latency_summary  # noqa: E402
from searchtune.eval.metrics import evaluate  # noqa: E402
from searchtune.eval.pipeline_run import search_through_pipeline  # noqa: E402
from searchtune.gateway.process import start_gateway_process  # noqa: E402
from searchtune.models import default_base_model  # noqa: E402
from searchtune.search.client import es_client  # noqa: E402
from searchtune.search.retrieval import bm25_search  # noqa: E402
from searchtune.search.retriever import BM25Retriever  # noqa: E402
from searchtune.serve.process import start_server_process  # noqa: E402
from searchtune.vectors.build import build_vector_index  # noqa: E402
from searchtune.vectors.embedders import open_embedder  # noqa: E402
from searchtune.vectors.versions import index_meta, live_index  # noqa: E402

FIELDS = ["title", "text"]
ADMIN = uuid.uuid4().hex


def load_avg() -> list[str]:
    return Path("/proc/loadavg").read_text().split(" ")[:3]


def ensure_vectors(client, alias: str | None, ds, embedder) -> tuple[str, bool]:
    """An alias whose live index has zero-shot vectors: reused when given and present, else built (and deleted)."""
    if alias and live_index(client, alias):
        meta = (index_meta(client, live_index(client, alias)) or {}).get("vectors") or {}
        if meta.get("model", {}).get("fingerprint") == embedder.identity.fingerprint:
            return alias, False
    alias = f"b-rerank-{uuid.uuid4().hex[:6]}"
    built = build_vector_index(client, alias, ds.corpus.values(), embedder, total=len(ds.corpus))
    print(json.dumps({"indexed": built.count, "docs_per_s": round(built.docs_per_second, 2)}), flush=True)
    return alias, True


def from_quickstart(workdir: Path, client, alias: str) -> dict:
    """The tuned stack a finished quickstart deployed: its models, weights and the alias holding tuned vectors."""
    report = json.loads((workdir / "report" / "report.json").read_text())
    deployment = report["deployment"]
    if deployment.get("winner") != "tuned hybrid" or not (deployment.get("cross_encoder") or {}).get("deployed"):
        raise SystemExit(f"{workdir}: the quickstart did not deploy tuned hybrid + cross-encoder "
                         f"(winner {deployment.get('winner')!r}); nothing to compare")
    tuned = open_embedder(str(workdir / "model"))
    meta = (index_meta(client, live_index(client, alias) or alias) or {}).get("vectors") or {}
    fingerprint = tuned.identity.fingerprint
    tuned.close()
    if meta.get("model", {}).get("fingerprint") != fingerprint:
        raise SystemExit(f"alias {alias!r} does not hold the vectors of {workdir / 'model'} (run the quickstart "
                         "again, or pass --tuned-index)")
    zero_shot = deployment["candidates"]["zero-shot hybrid"]["fold_params"][0]["weight"]
    return {"model": str(workdir / "model"), "alias": alias, "weight": float(deployment["deployed_weight"]),
            "zero_shot_weight": float(zero_shot), "reranker": str(workdir / "reranker")}


def train_or_load(args, ds, client, index: str, embedder) -> tuple[str, dict]:
    if args.ce_model:
        return args.ce_model, json.loads((Path(args.ce_model) / "training.json").read_text())
    from searchtune.train.budget import TimeBudgetCallback
    from searchtune.train.distill import distill_config, distill_reranker

    output = args.workdir / f"ce-{uuid.uuid4().hex[:6]}"
    caps = [TimeBudgetCallback(args.train_cap_seconds)] if args.train_cap_seconds else []
    outcome = distill_reranker(ds, BM25Retriever(client, index, FIELDS), embedder, str(output),
                               config=distill_config({"max_length": args.ce_max_length,
                                                      "max_steps": args.train_max_steps}), callbacks=caps,
                               vector_index=(client, index, "embedding"))
    return str(output), outcome.record


def rerank_latency(url: str, query: str, docs: list[str], requests: int) -> dict:
    """Cohere-shaped /v1/rerank of 20 documents, sequential, after two warm-up calls."""
    latencies = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(requests + 2):
            started = time.perf_counter()
            response = client.post("/v1/rerank", json={"model": "ce", "query": query, "documents": docs})
            response.raise_for_status()
            if i >= 2:
                latencies.append((time.perf_counter() - started) * 1000)
    return latency_summary(latencies)


def put(gateway_url: str, name: str, processors: list[dict]) -> None:
    httpx.put(f"{gateway_url}/_search/pipeline/{name}", json={"request_processors": processors},
              headers={"X-Searchtune-Admin-Key": ADMIN}, timeout=30).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--es-url", default=os.environ.get("SEARCHTUNE_ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--index", default=None, help="alias with zero-shot vectors to reuse")
    parser.add_argument("--ce-model", default=None)
    parser.add_argument("--from-quickstart", type=Path, default=None,
                        help="a finished quickstart's workdir: its tuned embedder and cross-encoder, nothing trained")
    parser.add_argument("--tuned-index", default="scifact", help="with --from-quickstart: the alias of its vectors")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--ce-max-length", type=int, default=256, help="tokens per pair, training and serving")
    parser.add_argument("--train-cap-seconds", type=float, default=900.0, help="time budget: only caps training")
    parser.add_argument("--train-max-steps", type=int, default=None, help="fixed step count instead of the data rule")
    parser.add_argument("--max-test-queries", type=int, default=None)
    parser.add_argument("--latency-requests", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/searchtune-rerank-bench"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report: dict = {"load_start": load_avg(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    ds = load_dataset(Path(shared_datasets_dir()) / "scifact" / "beir_format_derived")
    client = es_client(args.es_url)
    base = default_base_model()
    embedder = open_embedder(base, max_length=args.max_length)
    index, built = ensure_vectors(client, args.index, ds, embedder)
    began = time.perf_counter()
    tuned = from_quickstart(args.from_quickstart, client, args.tuned_index) if args.from_quickstart else None
    if tuned:
        args.ce_model = args.ce_model or tuned["reranker"]  # --ce-model: another cross-encoder on the same stack
    ce_path, record = train_or_load(args, ds, client, index, embedder)
    embedder.close()
    teacher = record["data"]["distill"]["teacher"]
    final = record["dev"]["final"]
    knn_weight, ce_weight = float(teacher["weight"]), float(final.get("dev_fusion_weight", 1.0))
    zero_shot_weight = tuned["zero_shot_weight"] if tuned else knn_weight
    report["training"] = {"seconds": record["train_seconds"], "steps": record["global_step"],
                          "teacher_seconds": teacher["seconds"], "reused": bool(args.ce_model),
                          "wall_seconds_this_run": None if args.ce_model else round(time.perf_counter() - began, 1),
                          "schedule": record.get("schedule"), "dev": final, "teacher": teacher,
                          "max_length": record["config"]["max_length"],
                          "pairs_per_second": record.get("pairs_per_second"), "bf16": record.get("bf16")}
    print(json.dumps(report["training"]), flush=True)
    test_q = dict(list(ds.split_queries("test").items())[:args.max_test_queries])
    qrels = {q: ds.split_qrels("test")[q] for q in test_q}
    servers = [start_server_process(base, extra_args=["--max-length", str(args.max_length)]),
               start_server_process(ce_path, env={"SEARCHTUNE_SERVE_MODEL_NAMES": "ce"},
                                    extra_args=["--max-length", str(args.ce_max_length)])]
    if tuned:
        servers.append(start_server_process(tuned["model"], extra_args=["--max-length", str(args.max_length)]))
    embed_url, ce_url = servers[0].url, servers[1].url
    pipelines = f"b-rr-pipelines-{uuid.uuid4().hex[:6]}"
    try:
        with start_gateway_process(args.es_url, port=0, timeout_s=30.0, admin_key=ADMIN,
                                   extra_args=["--pipeline-index", pipelines]) as gateway:
            def hybrid_step(url: str, weight: float) -> dict:
                return {"hybrid": {"endpoint": f"{url}/v1/embeddings", "k": 100, "num_candidates": 200,
                                   "fusion": {"method": "linear", "weight": weight}, "timeout_ms": 30000}}

            zero_shot = hybrid_step(embed_url, zero_shot_weight)
            # the cross-encoder reranks its teacher's candidates: the tuned hybrid when taken from a quickstart
            hybrid = hybrid_step(servers[2].url, tuned["weight"]) if tuned else zero_shot
            ce_index = tuned["alias"] if tuned else index

            def rerank(weight: float) -> dict:
                return {"neural_rerank": {"model_id": "ce", "endpoint": f"{ce_url}/v1/rerank", "top_k": 30,
                                          "bm25_weight": weight,
                                          "timeout_ms": 30000}}

            put(gateway.url, "zero-shot", [zero_shot])
            put(gateway.url, "hybrid", [hybrid])
            put(gateway.url, "hybrid-ce", [hybrid, rerank(0.0)])
            put(gateway.url, "hybrid-ce-fused", [hybrid, rerank(round(1.0 - ce_weight, 4))])
            bm25_run, _ = bm25_search(client, index, test_q, fields=FIELDS, top_k=100)
            rows = {"BM25 (direct)": (evaluate(qrels, bm25_run), 0, None)}
            teacher_label = "tuned hybrid" if tuned else "hybrid"
            systems = [(f"zero-shot hybrid (w={zero_shot_weight:.2f})", "zero-shot", index)]
            if tuned:
                systems.append((f"tuned hybrid (w={tuned['weight']:.2f})", "hybrid", ce_index))
            systems += [(f"cross-encoder alone ({teacher_label} top 30)", "hybrid-ce", ce_index),
                        (f"cross-encoder fused with {teacher_label} (w={ce_weight:.2f})", "hybrid-ce-fused", ce_index)]
            for label, name, searched in systems:
                through = search_through_pipeline(gateway.url, searched, name, test_q, fields=FIELDS, size=100)
                assert not through.errors, list(through.errors.values())[:2]
                rows[label] = (evaluate(qrels, through.run), through.fallbacks, latency_summary(through.latencies_ms))
                print(json.dumps({label: round(rows[label][0].aggregate["NDCG@10"], 4)}), flush=True)
            first = next(iter(test_q.values()))
            hits = httpx.post(f"{gateway.url}/{ce_index}/_search", params={"search_pipeline": "hybrid"},
                              json={"query": {"multi_match": {"query": first.text, "fields": FIELDS}}, "size": 20},
                              timeout=60).json()["hits"]["hits"]
            texts = [ds.corpus[h["_id"]].full_text for h in hits]
            report["rerank_20_docs_ms"] = rerank_latency(ce_url, first.text, texts, args.latency_requests)
    finally:
        for server in servers:
            server.stop()
        client.indices.delete(index=pipelines, ignore_unavailable=True)
        if built:
            client.indices.delete(index=f"{index}-*", ignore_unavailable=True)
    report["quality"] = {label: {"NDCG@10": round(r.aggregate["NDCG@10"], 4), "Recall@100": round(r.aggregate["Recall@100"], 4),
                                 "fallbacks": fb, "latency_ms": lat} for label, (r, fb, lat) in rows.items()}
    report["tuned_hybrid"] = (f"from the quickstart in {args.from_quickstart}: {tuned['model']}, alias {tuned['alias']}"
                              if tuned else "not measured: no tuned embedder is trained within this run "
                                            "(--from-quickstart WORKDIR measures one)")
    report["load_end"] = load_avg()
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


def print_table(report: dict) -> None:
    print(f"\nload average {report['load_start']} -> {report['load_end']}")
    print(f"{'system (SciFact test, through the gateway)':<52} {'NDCG@10':>8} {'R@100':>7} {'p50 ms':>8}")
    for label, row in report["quality"].items():
        p50 = (row["latency_ms"] or {}).get("p50", "")
        print(f"{label:<52} {row['NDCG@10']:>8.4f} {row['Recall@100']:>7.4f} {p50:>8}")
    print(f"tuned hybrid: {report['tuned_hybrid']}")
    t = report["training"]
    print(f"training: {t['seconds']:.0f}s ({t['steps']} steps; teacher {t['teacher_seconds']:.0f}s; "
          f"{'reused model' if t['reused'] else 'trained in this run'}); target <= 900s")
    print(f"rerank of 20 documents at the model server: p50 {report['rerank_20_docs_ms']['p50']} ms (target <= 250)")
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
