"""``searchtune eval``: measure retrieval quality on a dataset split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from elasticsearch import ApiError, TransportError

from searchtune.cli.common import DEFAULT_ES, EsUrlOption, fail, out, progress_bar
from searchtune.data import DatasetError, load_dataset
from searchtune.eval.metrics import evaluate, write_json, write_trec_run
from searchtune.eval.tables import metrics_table
from searchtune.search.client import es_client
from searchtune.search.retrieval import bm25_search, parse_fields


def eval_command(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder with judgments.")],
    index: Annotated[str, typer.Option("--index", help="Index holding the dataset's corpus.")],
    split: Annotated[str, typer.Option(help="Judgment split to evaluate (train/dev/test).")] = "test",
    top_k: Annotated[int, typer.Option("--top-k", help="Documents retrieved per query.")] = 100,
    fields: Annotated[str, typer.Option(help="Fields and boosts for multi_match, e.g. 'title^2,text'.")] = "title,text",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics and per-query scores as JSON.")] = None,
    run_out: Annotated[Path | None, typer.Option("--run", help="Write the ranking as a TREC run file.")] = None,
    es_url: EsUrlOption = DEFAULT_ES,
) -> None:
    """BM25 retrieval through the cluster, scored with NDCG@10, MRR@10, Recall@100 and MAP (ir-measures)."""
    try:
        ds = load_dataset(dataset)
        qrels = ds.split_qrels(split)
    except DatasetError as exc:
        fail(str(exc))
    queries = ds.split_queries(split)
    client = es_client(es_url)
    try:
        with progress_bar(f"BM25 {ds.name}/{split}", len(queries)) as advance:
            run, _ = bm25_search(client, index, queries, fields=parse_fields(fields), top_k=top_k, on_progress=advance)
    except (ApiError, TransportError) as exc:
        fail(f"search on '{index}' at {es_url} failed: {exc}")
    results = {"BM25": evaluate(qrels, run)}
    out.print(metrics_table(results, title=f"{ds.name} / {split}"))
    if json_out:
        write_json({"dataset": ds.name, "split": split, "index": index, "fields": fields, "top_k": top_k,
                    "systems": {name: r.to_dict() for name, r in results.items()}}, json_out)
    if run_out:
        write_trec_run(run, run_out, tag="bm25")
