"""``searchtune eval``: measure retrieval quality on a dataset split, optionally reranked by a model."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from searchtune.cli.checks import require_index, require_split, resolve_model_argument, warn_unless_index_matches
from searchtune.cli.common import DEFAULT_ES, EsUrlOption, fail, out, progress_bar
from searchtune.cli.errors import raise_cluster_error
from searchtune.config import store_uri
from searchtune.data import DatasetError, load_dataset

log = logging.getLogger(__name__)


def eval_command(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder with judgments.")],
    index: Annotated[str, typer.Option("--index", help="Index holding the dataset's corpus.")],
    split: Annotated[str, typer.Option(help="Judgment split to evaluate (train/dev/test).")] = "test",
    top_k: Annotated[int, typer.Option("--top-k", help="Documents retrieved per query.")] = 100,
    fields: Annotated[str, typer.Option(help="Fields and boosts for multi_match, e.g. 'title^2,text'.")] = "title,text",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics and per-query scores as JSON.")] = None,
    run_out: Annotated[Path | None, typer.Option("--run", help="Write the ranking as a TREC run file.")] = None,
    rerank: Annotated[str | None, typer.Option(
        "--rerank", envvar="SEARCHTUNE_RERANK",
        help="Rerank BM25's top-k with a model (folder, registry version NAME@ALIAS / NAME:VERSION, whose results "
             "are then recorded in the registry, or HF id; cross-encoder scores or embedding cosine) or an "
             "http(s):// endpoint speaking POST /v1/rerank (e.g. `searchtune serve`).")] = None,
    rerank_top_k: Annotated[int, typer.Option("--rerank-top-k", help="BM25 candidates reranked per query.")] = 100,
    fusion_weight: Annotated[float | None, typer.Option(
        "--fusion-weight", min=0.0, max=1.0,
        help="Also report min-max fusion: weight*model + (1-weight)*BM25.")] = None,
    tune_fusion: Annotated[bool, typer.Option(
        "--tune-fusion", help="Pick the fusion weight on a dev split (the model's own dev queries from "
                              "training.json, else --dev-split), never on the evaluated split.")] = False,
    dev_split: Annotated[str | None, typer.Option(
        "--dev-split", help="Split used to tune the fusion weight (default: the model's training dev queries, "
                            "else 'dev', else 10% carved from 'train').")] = None,
    rerank_kind: Annotated[str | None, typer.Option("--rerank-kind", help="cross-encoder | embedding "
                                                                          "(default: detected).")] = None,
    precision: Annotated[str, typer.Option("--precision", help="auto | fp32 | bf16 for a local model.")] = "auto",
    max_length: Annotated[int, typer.Option("--max-length", help="Max tokens per input for a local model.")] = 256,
    max_queries: Annotated[int | None, typer.Option(
        "--max-queries", min=1, help="Evaluate only the first N judged queries of the split (quick checks).")] = None,
    search_pipeline: Annotated[str | None, typer.Option(
        "--search-pipeline", help="Also evaluate what applications get from "
        "/{index}/_search?search_pipeline=NAME at --es-url (a searchtune gateway in front of Elasticsearch or "
        "OpenSearch, or an OpenSearch cluster with a rerank pipeline), one search per query.")] = None,
    hybrid: Annotated[str | None, typer.Option(
        "--hybrid", help="Also evaluate hybrid retrieval: kNN with this embedding model (folder, HF id, name@alias, "
                         "URL) fused with BM25 (--fusion, --fusion-weight or --tune-fusion on dev).")] = None,
    knn: Annotated[str, typer.Option("--knn", help="auto | exact (corpus embedded in-process) | es (the index's "
                                                   "vectors; auto picks them when this model built them).")] = "auto",
    fusion: Annotated[str, typer.Option("--fusion", help="linear (min-max, --fusion-weight) | rrf.")] = "linear",
    rank_constant: Annotated[int, typer.Option("--rank-constant", min=1, help="RRF rank constant.")] = 60,
    num_candidates: Annotated[int, typer.Option("--num-candidates", min=1, help="HNSW candidates per shard.")] = 200,
    es_url: EsUrlOption = DEFAULT_ES,
    store: Annotated[str | None, typer.Option("--store", envvar="SEARCHTUNE_STORE",
                                              help=f"Model registry for NAME@ALIAS models (now: {store_uri()}).")]
    = None,
) -> None:
    """BM25 retrieval through the cluster, scored with NDCG@10, MRR@10, Recall@100 and MAP (ir-measures).

    With --rerank, the model's reranking (and with --fusion-weight/--tune-fusion its fusion with BM25) is reported
    side by side with BM25, plus per-query wins/losses on NDCG@10. With --search-pipeline, the pipeline's results
    (e.g. the gateway's `bailian-rerank`) are reported the same way. Works against Elasticsearch and OpenSearch.
    Exits 2 (after the table) when the index holds none of the dataset's judged documents: the wrong index.
    """
    # imported here, not at the top: every `searchtune` command imports this module to build its --help, and the
    # cluster clients alone take a second to import
    from elasticsearch import ApiError, TransportError

    from searchtune.eval.metrics import evaluate, write_json, write_trec_run
    from searchtune.eval.tables import metrics_table
    from searchtune.search.client import search_client
    from searchtune.search.retrieval import bm25_search, parse_fields

    if (fusion_weight is not None or tune_fusion) and not (rerank or hybrid):
        fail("--fusion-weight/--tune-fusion need --rerank MODEL_OR_URL or --hybrid MODEL")
    if knn not in ("auto", "exact", "es") or fusion not in ("linear", "rrf"):
        fail("--knn is auto|exact|es and --fusion is linear|rrf")
    try:
        ds = load_dataset(dataset)
    except DatasetError as exc:
        fail(str(exc))
    require_split(ds, split, "--split")
    qrels = ds.split_qrels(split)
    queries = ds.split_queries(split)
    model = None
    if rerank and not rerank.startswith(("http://", "https://")):
        model = resolve_model_argument(rerank, "--rerank", store=store)
    if max_queries:
        queries = dict(list(queries.items())[:max_queries])
        qrels = {qid: qrels[qid] for qid in queries}
    try:
        client = search_client(es_url)
    except Exception as exc:  # noqa: BLE001 - unreachable cluster: one clear line
        raise_cluster_error(exc, es_url, index, doing="connecting")
    require_index(client, index, es_url)
    index_matches = warn_unless_index_matches(client, index, ds, qrels)
    want_docs = rerank is not None
    try:
        with progress_bar(f"BM25 {ds.name}/{split}", len(queries)) as advance:
            run, hit_docs = bm25_search(client, index, queries, fields=parse_fields(fields), top_k=top_k,
                                        with_source=want_docs, on_progress=advance)
    except (ApiError, TransportError, RuntimeError) as exc:
        raise_cluster_error(exc, es_url, index, doing=f"search on '{index}'")
    results = {"BM25": evaluate(qrels, run)}
    payload: dict = {"dataset": ds.name, "split": split, "index": index, "fields": fields, "top_k": top_k}
    final_run, tag = run, "bm25"
    if rerank:
        final_run, tag = _rerank(ds, client, index, fields, split, queries, qrels, run, hit_docs, results, payload,
                                 rerank, rerank_top_k, fusion_weight, tune_fusion and not hybrid, dev_split, rerank_kind,
                                 precision, max_length, es_url, model_path=model.path if model else None)
    if hybrid:
        from searchtune.cli.eval_hybrid import run_hybrid

        final_run, tag = run_hybrid(ds=ds, client=client, index=index, fields=fields, split=split, queries=queries,
                                    qrels=qrels, bm25=run, results=results, payload=payload, model=hybrid,
                                    knn_mode=knn, method=fusion, weight=fusion_weight, rank_constant=rank_constant,
                                    tune=tune_fusion, dev_split=dev_split, num_candidates=num_candidates,
                                    top_k=top_k, es_url=es_url, max_length=max_length,
                                    precision=precision), "hybrid"
    if search_pipeline:
        final_run, tag = _through_pipeline(es_url, index, search_pipeline, queries, qrels, fields, top_k, results,
                                           payload), "pipeline"
    out.print(metrics_table(results, title=f"{ds.name} / {split}"))
    if "wins_losses" in payload:
        for system, wl in payload["wins_losses"].items():
            out.print(f"{system} vs BM25 on NDCG@10: {wl['wins']} wins, {wl['losses']} losses, {wl['ties']} ties")
    if json_out:
        payload["systems"] = {name: r.to_dict() for name, r in results.items()}
        write_json(payload, json_out)
    if run_out:
        write_trec_run(final_run, run_out, tag=tag)
    if model is not None and model.registry_name:
        from searchtune.registry.evaluations import record_evaluation

        key = record_evaluation(model.store, model.registry_name, model.registry_version, ds.name, split, index,
                                results, payload)
        out.print(f"recorded {key} in the registry ({model.ref})")
    if not index_matches:
        raise typer.Exit(2)


def _through_pipeline(url, index, pipeline, queries, qrels, fields, top_k, results, payload):
    """Adds the search pipeline's results as a system; fails on search errors, reports fallbacks."""
    from searchtune.eval.metrics import evaluate
    from searchtune.eval.pipeline_run import search_through_pipeline
    from searchtune.eval.rerank import wins_losses

    with progress_bar(f"pipeline {pipeline}", len(queries)) as advance:
        outcome = search_through_pipeline(url, index, pipeline, queries, fields=fields, size=top_k, on_progress=advance)
    if outcome.errors:
        fail(f"{len(outcome.errors)} searches through pipeline '{pipeline}' failed, e.g. "
             f"{next(iter(outcome.errors.values()))}")
    label = f"pipeline {pipeline}"
    results[label] = evaluate(qrels, outcome.run)
    from searchtune.eval.hybrid import latency_summary

    payload["pipeline"] = {"name": pipeline, "url": url, "fallbacks": outcome.fallbacks,
                           "per_query_latency_ms": dict(zip(queries, (round(v, 2) for v in outcome.latencies_ms)))}
    payload["latency_ms"] = latency_summary(outcome.latencies_ms)
    payload.setdefault("wins_losses", {})[label] = wins_losses(results["BM25"], results[label]).to_dict()
    if outcome.fallbacks:
        log.warning("%d of %d searches fell back to the cluster's order", outcome.fallbacks, len(queries))
    return outcome.run


def _rerank(ds, client, index, fields, split, queries, qrels, run, hit_docs, results, payload, rerank, rerank_top_k,
            fusion_weight, tune_fusion, dev_split, rerank_kind, precision, max_length, es_url, model_path=None):
    """Adds the model (and fused) systems to ``results``; returns the run to write and its tag."""
    from searchtune.eval.metrics import evaluate
    from searchtune.eval.remote import RemoteRerankError, RemoteReranker
    from searchtune.eval.rerank import fuse_runs, rerank_run, tune_fusion_weight, wins_losses, with_tail
    from searchtune.search.retrieval import bm25_search, parse_fields

    docs = {**hit_docs, **{d: ds.corpus[d] for docs_ in run.values() for d in docs_ if d in ds.corpus}}
    remote = rerank.startswith(("http://", "https://"))
    if remote:
        scorer = RemoteReranker(rerank)
    else:
        from searchtune.scoring import load_scorer

        try:
            scorer = load_scorer(model_path or rerank, kind=rerank_kind, precision=precision, max_length=max_length)
        except (OSError, ValueError) as exc:
            fail(f"cannot load model '{rerank}': {exc}")
    label = f"rerank {Path(rerank).name if not remote else rerank} (top-{rerank_top_k})"

    def score(q, r, d, desc):
        with progress_bar(desc, len(q)) as advance:
            return rerank_run(scorer, q, r, d, top_k=rerank_top_k, on_progress=advance)

    try:
        model_run = score(queries, run, docs, f"rerank {split}")
        results[label] = evaluate(qrels, with_tail(model_run, run))
        payload["rerank"] = {"model": rerank, "top_k": rerank_top_k, "kind": getattr(scorer, "kind", None)}
        final_run, tag = with_tail(model_run, run), "rerank"
        weight = fusion_weight
        if tune_fusion:
            dev_queries, dev_qrels, dev_name = _dev_queries(ds, model_path or rerank, dev_split, split)
            dev_run, dev_hits = bm25_search(client, index, dev_queries, fields=parse_fields(fields),
                                            top_k=rerank_top_k, with_source=True)
            dev_docs = {**dev_hits, **{d: ds.corpus[d] for r in dev_run.values() for d in r if d in ds.corpus}}
            dev_model = score(dev_queries, dev_run, dev_docs, f"rerank dev ({dev_name})")
            choice = tune_fusion_weight(dev_qrels, dev_run, dev_model)
            weight = choice.weight
            payload["fusion"] = {"weight": weight, "tuned_on": dev_name, "dev_queries": len(dev_queries),
                                 "dev_ndcg@10": choice.value, "curve": choice.curve}
            out.print(f"fusion weight {weight:.2f} tuned on {dev_name} ({len(dev_queries)} queries, "
                      f"dev NDCG@10 {choice.value:.4f})")
        elif weight is not None:
            payload["fusion"] = {"weight": weight, "tuned_on": None}
        if weight is not None:
            fused = fuse_runs(run, model_run, weight)
            results[f"fused BM25 + model (w={weight:.2f})"] = evaluate(qrels, fused)
            final_run, tag = fused, "fused"
    except RemoteRerankError as exc:
        fail(str(exc))
    except DatasetError as exc:
        fail(str(exc))
    finally:
        if remote:
            scorer.close()
    baseline = results["BM25"]
    payload["wins_losses"] = {name: wins_losses(baseline, r).to_dict() for name, r in results.items() if name != "BM25"}
    return final_run, tag


def _dev_queries(ds, model: str, dev_split: str | None, eval_split: str):
    """Dev queries for fusion tuning: explicit split > the model's training dev queries > 'dev' > 10% of train."""
    from searchtune.train.data import carve_dev

    if dev_split:
        if dev_split == eval_split:
            raise DatasetError(ds.source or ds.name, "tuning fusion on the evaluated split overfits; "
                                                     "pick another --dev-split", field="dev_split")
        return ds.split_queries(dev_split), ds.split_qrels(dev_split), dev_split
    record = Path(model) / "training.json"
    if record.is_file():
        data = json.loads(record.read_text()).get("data", {})
        ids, name = set(data.get("dev_queries") or []), data.get("dev_split")
        if ids and name in ds.qrels and data.get("dataset_name") in (None, ds.name):
            queries = {q: v for q, v in ds.split_queries(name).items() if q in ids}
            return queries, {q: ds.qrels[name][q] for q in queries}, f"{name} (training dev queries)"
    if "dev" in ds.qrels and eval_split != "dev":
        return ds.split_queries("dev"), ds.split_qrels("dev"), "dev"
    if "train" in ds.qrels and eval_split != "train":
        ids = carve_dev(ds.split_queries("train"), 0.1, 42)
        queries = {q: v for q, v in ds.split_queries("train").items() if q in ids}
        return queries, {q: ds.qrels["train"][q] for q in queries}, "train (10% carved, seed 42)"
    raise DatasetError(ds.source or ds.name, "no split to tune fusion on; pass --dev-split or --fusion-weight",
                       field="dev_split")
