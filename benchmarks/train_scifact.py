"""Benchmark: fine-tuning on SciFact train vs BM25 and zero-shot MiniLM, evaluated on SciFact test.

Trains with BM25-mined negatives from the train split; a dev split carved from train (never test) selects
checkpoints and fusion weights. Prints one table (NDCG@10 etc. on SciFact test) plus training wall time and
throughput. Not a test: it takes tens of minutes on a 2-core CPU.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_scifact.py --es-url http://127.0.0.1:9200 --index scifact
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rich.console import Console  # noqa: E402

from searchtune.data import load_dataset  # noqa: E402
from searchtune.eval.metrics import EvalResult, evaluate  # noqa: E402
from searchtune.eval.rerank import fuse_runs, minmax, rerank_run, tune_fusion_weight, with_tail  # noqa: E402
from searchtune.eval.tables import metrics_table  # noqa: E402
from searchtune.models import default_base_model  # noqa: E402
from searchtune.scoring import load_scorer  # noqa: E402
from searchtune.search.client import es_client  # noqa: E402
from searchtune.search.retrieval import bm25_search, parse_fields  # noqa: E402
from searchtune.search.retriever import BM25Retriever  # noqa: E402
from searchtune.train.config import load_config  # noqa: E402
from searchtune.train.data import build_dev_set, carve_dev  # noqa: E402
from searchtune.train.embed import train_embedder  # noqa: E402
from searchtune.train.inputs import prepare_inputs  # noqa: E402
from searchtune.train.rerank import train_reranker  # noqa: E402
from searchtune.config import shared_datasets_dir  # noqa: E402

log = logging.getLogger("bench")
console = Console(width=160)


def model_runs(model: str, kind: str, splits: dict, top_k: int, max_length: int = 256) -> dict[str, dict]:
    """Rerank every split's BM25 top-k with one model.

    An embedding model embeds each distinct candidate document once across all splits (a cache of embeddings), so
    dev and test share the work; a cross-encoder scores each (query, document) pair.
    """
    scorer = load_scorer(model, kind=kind, max_length=max_length, batch_size=64)
    runs = {}
    started = time.perf_counter()
    if scorer.kind == "embedding":
        from searchtune.eval.rerank import top_k_docs

        wanted = sorted({d for queries, run, docs in splits.values() for q in queries
                         for d in top_k_docs(run.get(q, {}), top_k) if d in docs})
        texts = {}
        for queries, run, docs in splits.values():
            texts.update({d: docs[d].full_text for d in wanted if d in docs})
        vectors = dict(zip(wanted, scorer.embed([texts[d] for d in wanted])))
        for name, (queries, run, docs) in splits.items():
            qids = list(queries)
            qvecs = scorer.embed([queries[q].text for q in qids])
            runs[name] = {q: {d: float(vectors[d] @ v) for d in top_k_docs(run.get(q, {}), top_k) if d in vectors}
                          for q, v in zip(qids, qvecs)}
        log.info("%s embedded %d distinct documents in %.0fs", Path(model).name, len(wanted),
                 time.perf_counter() - started)
        return runs
    for name, (queries, run, docs) in splits.items():
        started = time.perf_counter()
        runs[name] = rerank_run(scorer, queries, run, docs, top_k=top_k)
        pairs = sum(len(v) for v in runs[name].values())
        log.info("%s reranked %s: %d pairs in %.0fs (%.1f pairs/s)", Path(model).name, name, pairs,
                 time.perf_counter() - started, pairs / (time.perf_counter() - started))
    return runs


def three_way(first: dict, a: dict, b: dict, wa: float, wb: float) -> dict:
    fused = {}
    for qid, sa in a.items():
        sb = b.get(qid, {})
        common = [d for d in sa if d in sb]
        na, nb = minmax({d: sa[d] for d in common}), minmax({d: sb[d] for d in common})
        nf = minmax({d: first[qid].get(d, 0.0) for d in common})
        fused[qid] = {d: wa * na[d] + wb * nb[d] + (1 - wa - wb) * nf[d] for d in common}
    return with_tail(fused, first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(Path(shared_datasets_dir() or "../shared/datasets")
                                                 / "scifact" / "beir_format_derived"))
    parser.add_argument("--es-url", default=os.environ.get("SEARCHTUNE_ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--index", default="scifact")
    parser.add_argument("--work", default="/tmp/searchtune-bench")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per input, training and scoring")
    parser.add_argument("--embed-epochs", type=float, default=2.0)
    parser.add_argument("--dev-top-k", type=int, default=30, help="BM25 candidates reranked by in-training dev evals")
    parser.add_argument("--embed-lr", type=float, default=3e-5)
    parser.add_argument("--embed-negatives", type=int, default=1)
    parser.add_argument("--ce-loss", default="lambda")
    parser.add_argument("--ce-epochs", type=float, default=1.0)
    parser.add_argument("--ce-negatives", type=int, default=5)
    parser.add_argument("--ce-top-k", type=int, default=30, help="BM25 candidates the cross-encoder reranks")
    parser.add_argument("--ce-base", default="embedder", help="'embedder' (the fine-tuned one), 'default', or a path")
    parser.add_argument("--skip-ce", action="store_true")
    parser.add_argument("--json", default=None)
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    started = time.perf_counter()

    ds = load_dataset(opts.dataset)
    client = es_client(opts.es_url)
    fields = parse_fields("title,text")
    retriever = BM25Retriever(client, opts.index, fields)
    embed_cfg = load_config("embed", overrides={"epochs": opts.embed_epochs, "learning_rate": opts.embed_lr,
                                                "num_negatives": opts.embed_negatives, "max_length": opts.max_length,
                                                "dev_top_k": opts.dev_top_k})
    dev_ids = carve_dev(ds.split_queries("train"), embed_cfg.dev_fraction, embed_cfg.seed)
    dev = build_dev_set(retriever, ds, "train", dev_ids, 100)
    train_dev = build_dev_set(retriever, ds, "train", dev_ids, opts.dev_top_k)
    test_queries = ds.split_queries("test")
    test_qrels = ds.split_qrels("test")
    test_run, _ = bm25_search(client, opts.index, test_queries, fields=fields, top_k=100)
    splits = {"dev": (dev.queries, dev.run, dev.docs), "test": (test_queries, test_run, ds.corpus)}
    log.info("%d dev queries carved from train, %d test queries", len(dev), len(test_queries))

    rows: dict[str, EvalResult] = {"BM25": evaluate(test_qrels, test_run)}
    notes: dict[str, object] = {}
    dev_scores: dict[str, float] = {}

    def add_model(label: str, runs: dict, top_k: int) -> dict:
        rows[label] = evaluate(test_qrels, with_tail(runs["test"], test_run))
        choice = tune_fusion_weight(dev.qrels, dev.run, runs["dev"])
        rows[f"{label} + BM25 fused (w={choice.weight:.2f} on dev)"] = evaluate(
            test_qrels, fuse_runs(test_run, runs["test"], choice.weight))
        dev_scores[f"{label} fused"] = choice.value
        notes[label] = {"fusion_weight": choice.weight, "dev_fused_ndcg@10": choice.value, "top_k": top_k}
        console.print(metrics_table(rows, title="SciFact test (so far)"))
        return runs

    base = default_base_model()
    zero = add_model("zero-shot MiniLM (cosine, top-100)", model_runs(base, "embedding", splits, 100, opts.max_length), 100)

    inputs = prepare_inputs(embed_cfg, dataset=ds, dataset_dir=opts.dataset, retriever=retriever)
    embed_out = f"{opts.work}/embedder"
    outcome = train_embedder(embed_cfg, inputs.triplets, embed_out, dev=train_dev, data_info=inputs.info)
    notes["embedder_training"] = {k: outcome.record[k] for k in ("train_seconds", "pairs_per_second", "global_step",
                                                                  "epochs_done", "bf16")}
    notes["embedder_training"]["dev_history"] = outcome.record["dev"]["history"]
    log.info("embedder trained: %s", notes["embedder_training"])
    tuned = add_model("fine-tuned embedder (top-100)", model_runs(embed_out, "embedding", splits, 100, opts.max_length), 100)

    if not opts.skip_ce:
        ce_cfg = load_config("rerank", overrides={"loss": opts.ce_loss, "epochs": opts.ce_epochs,
                                                  "num_negatives": opts.ce_negatives, "max_length": opts.max_length,
                                                  "dev_top_k": opts.ce_top_k,
                                                  "base_model": embed_out if opts.ce_base == "embedder" else opts.ce_base})
        ce_inputs = prepare_inputs(ce_cfg, dataset=ds, dataset_dir=opts.dataset, retriever=retriever)
        ce_dev = build_dev_set(retriever, ds, "train", dev_ids, opts.ce_top_k)
        ce_out = f"{opts.work}/cross-encoder"
        ce_outcome = train_reranker(ce_cfg, ce_inputs.triplets, ce_out, dev=ce_dev, data_info=ce_inputs.info)
        notes["ce_training"] = {k: ce_outcome.record[k] for k in ("train_seconds", "pairs_per_second", "global_step",
                                                                   "epochs_done", "bf16")}
        log.info("cross-encoder trained: %s", notes["ce_training"])
        ce = add_model(f"fine-tuned cross-encoder ({opts.ce_loss}, top-{opts.ce_top_k})",
                       model_runs(ce_out, "cross-encoder", splits, opts.ce_top_k, opts.max_length), opts.ce_top_k)
        grid = [round(i / 10, 1) for i in range(11)]
        best = max(((a, b) for a in grid for b in grid if a + b <= 1.0 + 1e-9),
                   key=lambda w: evaluate(dev.qrels, three_way(dev.run, tuned["dev"], ce["dev"], *w)).aggregate["NDCG@10"])
        rows[f"best fusion: BM25 + embedder {best[0]:.1f} + cross-encoder {best[1]:.1f} (dev)"] = evaluate(
            test_qrels, three_way(test_run, tuned["test"], ce["test"], *best))
    del zero

    total = time.perf_counter() - started
    console.print(metrics_table(rows, title="SciFact test: BM25 vs zero-shot vs fine-tuned (fusion weights from dev)"))
    bm25 = rows["BM25"].aggregate["NDCG@10"]
    zero_fused = next(v for k, v in rows.items() if k.startswith("zero-shot MiniLM") and "fused" in k)
    tuned_rows = {k: v for k, v in rows.items() if "fine-tuned" in k or k.startswith("best fusion")}
    best_name, best_row = max(tuned_rows.items(), key=lambda kv: kv[1].aggregate["NDCG@10"])
    best_ndcg = best_row.aggregate["NDCG@10"]
    console.print(f"best fine-tuned: {best_name}: NDCG@10 {best_ndcg:.4f}; vs BM25 {best_ndcg - bm25:+.4f} (target +0.05); "
                  f"vs zero-shot fusion {best_ndcg - zero_fused.aggregate['NDCG@10']:+.4f} (target +0.02)")
    for key in ("embedder_training", "ce_training"):
        if key in notes:
            t = notes[key]
            console.print(f"{key}: {t['train_seconds']:.0f}s wall, {t['pairs_per_second']} pairs/s, "
                          f"{t['global_step']} steps, bf16={t['bf16']}")
    console.print(f"benchmark wall time: {total / 60:.1f} min")
    if opts.json:
        Path(opts.json).write_text(json.dumps({"rows": {k: v.aggregate for k, v in rows.items()}, "notes": notes,
                                               "wall_seconds": total}, indent=2, default=str))


if __name__ == "__main__":
    main()
