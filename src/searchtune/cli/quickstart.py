"""``searchtune quickstart``: the whole loop on real data, ending with a report."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape

from searchtune.cli.common import console, fail, out
from searchtune.config import shared_datasets_dir
from searchtune.quickstart.options import DEFAULT_BUDGET_MINUTES


def _default_dataset() -> Path | None:
    root = shared_datasets_dir()
    return root / "scifact" / "beir_format_derived" if root else None


def _parse_overrides(items: list[str] | None) -> dict:
    overrides = {}
    for item in items or []:
        if "=" not in item:
            fail(f"--train-option expects KEY=VALUE, got '{item}'")
        key, value = item.split("=", 1)
        overrides[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return overrides


def quickstart_command(
    dataset: Annotated[Path | None, typer.Option(help="BEIR-layout dataset with train and test judgments. "
                                                      "Default: SciFact from ../shared/datasets.")] = None,
    budget_minutes: Annotated[float, typer.Option("--budget-minutes", help="Time cap of the whole run. Training runs a "
                                                  "fixed amount chosen from the data size; if it would take more than "
                                                  "60% of this cap it is cut, and the report says so first.")] = DEFAULT_BUDGET_MINUTES,
    workdir: Annotated[Path, typer.Option(help="Where the model, store, triplets and report go.")] = Path("searchtune-quickstart"),
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Leave Elasticsearch, the model endpoint "
                                               "and the gateway running and print their URLs.")] = False,
    es_url: Annotated[str | None, typer.Option("--es-url", "--url", envvar="SEARCHTUNE_ES_URL",
                                               help="Use this cluster instead of starting the local node.")] = None,
    index: Annotated[str | None, typer.Option(help="Index name (default: the dataset's name).")] = None,
    reindex: Annotated[bool, typer.Option("--reindex", help="Rebuild the index even if it is complete.")] = False,
    task: Annotated[str, typer.Option(help="What to train and deploy. auto (default): the embedder, then a "
                                      "cross-encoder distilled from the hybrid stack it deploys when the estimate of "
                                      "both fits --budget-minutes (docs/quickstart.md); the cross-encoder goes behind "
                                      "that stack only if it beats it on dev. embed: the embedder only (hybrid, "
                                      "about 10 min on SciFact). both: the two, whatever the estimate. rerank: a "
                                      "cross-encoder behind the zero-shot hybrid.")] = "auto",
    max_train_queries: Annotated[int | None, typer.Option(help="Train on at most N judged queries (quick runs).")] = None,
    max_test_queries: Annotated[int | None, typer.Option(help="Evaluate at most N test queries (quick runs).")] = None,
    rerank_top_k: Annotated[int, typer.Option(help="BM25 hits the gateway sends to the model per search.")] = 100,
    max_length: Annotated[int, typer.Option(help="Max tokens per text for training and serving.")] = 256,
    validation: Annotated[str, typer.Option(help="How the deployed stack (BM25, zero-shot or tuned hybrid) is "
                                            "chosen: auto (k-fold over all judged training queries when they are "
                                            "few, see docs/choosing.md; else the dev carve), kfold or dev.")]
    = "auto",
    train_option: Annotated[list[str] | None, typer.Option("--train-option", help="Training config override "
                                                            "KEY=VALUE (repeatable), e.g. max_steps=20; under --task "
                                                            "both the cross-encoder takes only max_steps, seed, "
                                                            "precision, threads from it.")] = None,
    store: Annotated[str | None, typer.Option("--store", help="Registry/dataset store (fsspec URI). Default: "
                                              "WORKDIR/store, never $SEARCHTUNE_STORE, so your own registry is "
                                              "left alone.")] = None,
    judgments: Annotated[str | None, typer.Option("--judgments", help="Judgment list NAME or NAME@VERSION (from "
                                                  "`searchtune workbench`, in $SEARCHTUNE_STORE) laid over the "
                                                  "dataset's train split; its record goes into the model's card.")]
    = None,
) -> None:
    """Run the full relevance loop: local Elasticsearch, index, BM25 baseline, validate/stage/mine training data,
    fine-tune within the budget, register and promote the model, serve it, put the gateway's search pipeline in
    front of Elasticsearch, evaluate the test queries through it, and write report.md/report.html."""
    from searchtune.quickstart.options import QuickstartOptions
    from searchtune.quickstart.runner import Quickstart

    if task not in ("auto", "embed", "rerank", "both"):
        fail(f"--task must be auto, embed, rerank or both, got '{task}'")
    if validation not in ("auto", "kfold", "dev"):
        fail(f"--validation must be auto, kfold or dev, got '{validation}'")
    dataset = dataset or _default_dataset()
    if dataset is None or not dataset.exists():
        fail("no dataset: pass --dataset PATH (BEIR layout) or set SEARCHTUNE_DATASETS to the shared datasets folder")
    judgments_info = None
    if judgments:  # the list over its dataset, written as a dataset folder the stages read like any other
        from searchtune.config import store_uri
        from searchtune.data.records import DatasetError
        from searchtune.workbench.training import write_judged_dataset

        try:
            dataset, judgments_info = write_judged_dataset(judgments, dataset, workdir.resolve() / "judged-dataset",
                                                           store=store_uri())
        except DatasetError as exc:
            fail(str(exc))
    options = QuickstartOptions(dataset=Path(dataset).resolve(), judgments_info=judgments_info, workdir=workdir.resolve(), budget_minutes=budget_minutes,
                                es_url=es_url, index=index, reindex=reindex, keep_running=keep_running, task=task,
                                max_train_queries=max_train_queries, max_test_queries=max_test_queries,
                                rerank_top_k=rerank_top_k, max_length=max_length, validation=validation,
                                train_overrides=_parse_overrides(train_option), store_uri=store)

    def _terminate(signum, frame):  # SIGTERM gets the same clean-up as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    runner = Quickstart(options, announce=lambda msg: console.print(f"[bold cyan]›[/] {escape(msg)}"))
    try:
        result = runner.run()
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: every process the quickstart started has been stopped[/]")
        raise typer.Exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place that turns any stage failure into one clear line
        fail(f"quickstart failed during '{list(runner.clock.seconds)[-1] if runner.clock.seconds else 'start'}': {exc}")
    from searchtune.eval.tables import metrics_table

    out.print(metrics_table(result.systems, title="test split"))
    for stage, seconds in result.stage_seconds.items():
        out.print(f"  {stage:<36} {seconds:8.1f}s")
    if result.deployment:
        out.print(result.deployment)
    out.print(f"peak memory (all processes, Elasticsearch included): {result.peak_memory_gib:.2f} GiB")
    out.print(f"report: {result.report_dir / 'report.md'} and {result.report_dir / 'report.html'}")
    if keep_running:
        for name, url in result.urls.items():
            out.print(f"{name}: {url}")
        out.print("try: curl -s '" + result.urls.get("gateway", "") + "/" + (index or "INDEX") +
                  "/_search?search_pipeline=bailian-rerank' -H 'content-type: application/json' "
                  "-d '{\"query\":{\"multi_match\":{\"query\":\"vitamin D\",\"fields\":[\"title\",\"text\"]}},\"size\":5}'")
