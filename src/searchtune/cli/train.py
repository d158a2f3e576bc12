"""``searchtune train rerank|embed``: fine-tune a model on judged data (see docs/training.md)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from searchtune.cli.checks import require_index, require_split
from searchtune.cli.common import DEFAULT_ES, EsUrlOption, fail, out
from searchtune.data import DatasetError, load_dataset

log = logging.getLogger(__name__)

app = typer.Typer(help="Fine-tune a reranker (cross-encoder) or an embedding model on judged queries. "
                       "For a few hundred to a few thousand judged queries, `train embed` fused with BM25 "
                       "(`eval --rerank MODEL --tune-fusion`) is the recommended recipe.",
                  no_args_is_help=True)

TripletsOpt = Annotated[Path | None, typer.Option("--triplets", help="JSONL of {query, positive, negatives[]}.",
                                                   exists=True, dir_okay=False)]
DatasetOpt = Annotated[Path | None, typer.Option("--dataset", help="Dataset folder: mine BM25 negatives and carve "
                                                                     "a dev split (needs --index).")]
IndexOpt = Annotated[str | None, typer.Option("--index", help="Index holding the dataset's corpus.")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="Model folder or store URI (s3://..., file://...).")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config; CLI options override it.",
                                                 exists=True, dir_okay=False)]
BaseOpt = Annotated[str | None, typer.Option("--base-model", "-m", envvar="SEARCHTUNE_BASE_MODEL",
                                             help="HF model id or path. Default: bundled all-MiniLM-L6-v2.")]
SplitOpt = Annotated[str, typer.Option("--split", help="Judgment split to train on.")]
LrOpt = Annotated[float | None, typer.Option("--lr", "--learning-rate", help="Learning rate.")]
EpochsOpt = Annotated[float | None, typer.Option("--epochs", help="Training epochs (default: from the data size).")]
MaxStepsOpt = Annotated[int | None, typer.Option("--max-steps", help="Stop after N optimizer steps (overrides epochs).")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Per-device batch size.")]
MaxLenOpt = Annotated[int | None, typer.Option("--max-length", help="Max tokens per input (256 is plenty for passages).")]
NegOpt = Annotated[int | None, typer.Option("--negatives", help="Hard negatives per query.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (data order, dev carve, init).")]
EvalStepsOpt = Annotated[int | None, typer.Option("--eval-steps", help="Evaluate/checkpoint every N steps "
                                                                        "(default: every epoch).")]
PatienceOpt = Annotated[int | None, typer.Option("--patience", help="Early stopping after N evals without gain.")]
DevSplitOpt = Annotated[str | None, typer.Option("--dev-split", help="Use this judgment split as dev instead of "
                                                                      "carving one from the training split.")]
PrecisionOpt = Annotated[str | None, typer.Option("--precision", help="auto | fp32 | bf16 (auto: bf16 where the "
                                                                       "CPU/GPU has fast bf16).")]
ReportOpt = Annotated[list[str] | None, typer.Option("--report-to", help="Trainer integrations: tensorboard, mlflow, "
                                                                        "wandb, ... (repeatable).")]
ResumeOpt = Annotated[str | None, typer.Option("--resume", help="'latest' or a checkpoint folder.")]
KeepOpt = Annotated[bool, typer.Option("--keep-checkpoints", help="Keep intermediate checkpoints in the output.")]
CapOpt = Annotated[float | None, typer.Option("--time-cap-minutes", help="Stop early if training would run longer; "
                                                                         "the amount trained is otherwise fixed by "
                                                                         "the data size (docs/training.md).")]
JudgmentsOpt = Annotated[str | None, typer.Option("--judgments", help="Judgment list NAME or NAME@VERSION (from "
                                                                       "`searchtune workbench`), laid over --split of "
                                                                       "its dataset (or --dataset); needs --index.")]


def _overrides(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _run(task: str, *, loss: str | None, triplets: Path | None, dataset: Path | None, index: str | None,
         output: str, config: Path | None, es_url: str, split: str, resume: str | None, keep_checkpoints: bool,
         time_cap_minutes: float | None = None, judgments: str | None = None, validation: str = "auto",
         **overrides: Any) -> None:
    from searchtune.train.config import load_config
    from searchtune.train.inputs import prepare_inputs

    if triplets is None and dataset is None and judgments is None:
        fail("give --triplets FILE, or --dataset DIR with --index NAME")
    if validation not in ("auto", "kfold", "dev", "off"):
        fail(f"--validation must be auto, kfold, dev or off, got '{validation}'")
    if (dataset is not None or judgments) and not index:
        fail("--dataset/--judgments need --index (the index holding its corpus) to mine negatives and build the dev set")
    from searchtune.search.client import CLUSTER_ERRORS

    try:
        cfg = load_config(task, config, _overrides(loss=loss, **overrides))
        if judgments:  # the list over its dataset: the trainer reads it like any dataset (workbench/training.py)
            from searchtune.workbench.training import load_for_training

            dataset, ds, judgment_info = load_for_training(judgments, dataset, split)
        else:
            ds = load_dataset(dataset) if dataset is not None else None
        retriever = None
        if ds is not None:
            from searchtune.search.client import search_client
            from searchtune.search.retrieval import parse_fields
            from searchtune.search.retriever import BM25Retriever

            require_split(ds, split, "--split")
            if cfg.dev_split:
                require_split(ds, cfg.dev_split, "--dev-split")
            client = search_client(es_url)
            require_index(client, index, es_url)
            retriever = BM25Retriever(client, index, parse_fields(cfg.fields))
        inputs = prepare_inputs(cfg, triplets_path=triplets, dataset=ds, dataset_dir=dataset, retriever=retriever,
                                split=split)
        if judgments:
            inputs.info["judgments"] = judgment_info  # kept in training.json, so in the registry card
    except (DatasetError, FileNotFoundError) as exc:
        fail(str(exc))
    except CLUSTER_ERRORS as exc:
        fail(f"search on '{index}' at {es_url} failed: {exc}")
    _advise(task, cfg.base_model, inputs.triplets)
    if task == "embed":
        from searchtune.train.embed import train_embedder as train_fn
    else:
        from searchtune.train.rerank import train_reranker as train_fn
    from searchtune.train.budget import TimeBudgetCallback
    from searchtune.train.schedule import budget_cut_note

    callbacks = [TimeBudgetCallback(time_cap_minutes * 60)] if time_cap_minutes else []
    extra = {"corpus": ds.corpus} if task == "embed" and ds is not None else {}
    try:
        outcome = train_fn(cfg, inputs.triplets, output, dev=inputs.dev, data_info=inputs.info, resume=resume,
                           keep_checkpoints=keep_checkpoints, callbacks=callbacks, **extra)
    except FileNotFoundError as exc:
        fail(str(exc))
    record = outcome.record
    if budget_cut_note(record):
        log.warning("%s", budget_cut_note(record))
        out.print(f"WARNING: {budget_cut_note(record)}")
    final = record["dev"]["final"]
    summary = f"saved {task} model to {output} in {record['train_seconds']:.0f}s ({record['pairs_per_second']} pairs/s)"
    if final:
        summary += (f"; dev NDCG@10 {final.get('dev_ndcg@10', 0):.4f}, fused with BM25 "
                    f"{final.get('dev_fused_ndcg@10', 0):.4f} (w={final.get('dev_fusion_weight', 0):.2f})")
    if record.get("hybrid"):
        hybrid = record["hybrid"]
        summary += (f"; hybrid (kNN + BM25) weight {hybrid['weight']:.2f}, dev NDCG@10 {hybrid['dev_ndcg@10']:.4f} "
                    f"vs BM25 {hybrid['dev_bm25_ndcg@10']:.4f}")
    out.print(summary)
    if task == "embed" and ds is not None and validation != "off":
        from searchtune.train.memory import return_freed_memory

        return_freed_memory("training")  # the stack choice embeds the corpus twice in this process
        _choose(ds, record, output, cfg, split, index, es_url, validation)


def _choose(ds, record: dict, output: str, cfg, split: str, index: str, es_url: str, validation: str) -> None:
    """Which stack to deploy (BM25, zero-shot or tuned hybrid), validated on the judged training queries
    (train/choose.py): printed, and kept in training.json ``selection`` (so in the registry card)."""
    from searchtune.search.client import search_client
    from searchtune.serve.embedder import open_serving_embedder
    from searchtune.storage import atomic_write_json
    from searchtune.train.choose import choose_deployed_stack, judged_training_qrels

    qrels = judged_training_qrels(ds, tuple(dict.fromkeys([split, cfg.dev_split or split])))
    choice = choose_deployed_stack(search_client(es_url), ds, qrels, index, cfg.fields, output, record,
                                   cfg.max_length, cfg.seed, out.print, validation=validation,
                                   open_embedder=open_serving_embedder)
    choice.close()
    record["selection"] = choice.to_dict()
    if (Path(output) / "training.json").is_file():
        atomic_write_json(Path(output) / "training.json", record)


#: Below this many judged queries a cross-encoder with a fresh head loses to a tuned embedder fused with BM25.
SMALL_DATA_QUERIES = 2000


def _advise(task: str, base_model: str | None, triplets: list) -> None:
    """Point users with small data at the recipe that wins there (docs/training.md has the measurements)."""
    from searchtune.models import resolve_model
    from searchtune.scoring import detect_model_kind

    queries = len({t.query for t in triplets})
    if task == "rerank" and queries < SMALL_DATA_QUERIES and detect_model_kind(resolve_model(base_model)) == "embedding":
        log.warning("%d training queries and a base model without a reranking head: on data this small, "
                    "`searchtune train embed` fused with BM25 (`eval --rerank MODEL --tune-fusion`) ranks better "
                    "(see docs/training.md); continuing as asked", queries)


@app.command("embed")
def embed_command(
    output: OutputOpt,
    triplets: TripletsOpt = None, dataset: DatasetOpt = None, index: IndexOpt = None, config: ConfigOpt = None,
    base_model: BaseOpt = None,
    loss: Annotated[str | None, typer.Option("--loss", help="auto (default: mnrl if its memory estimate fits, else "
                                                             "cached-mnrl) | mnrl | cached-mnrl.")] = None,
    split: SplitOpt = "train", lr: LrOpt = None, epochs: EpochsOpt = None, max_steps: MaxStepsOpt = None,
    batch_size: BatchOpt = None, max_length: MaxLenOpt = None, negatives: NegOpt = None, seed: SeedOpt = None,
    eval_steps: EvalStepsOpt = None, patience: PatienceOpt = None, dev_split: DevSplitOpt = None,
    precision: PrecisionOpt = None, report_to: ReportOpt = None, resume: ResumeOpt = None,
    keep_checkpoints: KeepOpt = False, time_cap_minutes: CapOpt = None, es_url: EsUrlOption = DEFAULT_ES,
    judgments: JudgmentsOpt = None,
    validation: Annotated[str, typer.Option("--validation", help="With --dataset: choose the stack to deploy (BM25, "
                                            "zero-shot or tuned hybrid) by auto (k-fold over all judged queries when "
                                            "they are few, docs/choosing.md; else the dev carve), kfold, dev, or "
                                            "off.")] = "auto",
) -> None:
    """Fine-tune an embedding model (multiple-negatives ranking with BM25 hard negatives). The default for small data."""
    _run("embed", loss=loss, triplets=triplets, dataset=dataset, index=index, output=output, config=config,
         es_url=es_url, split=split, resume=resume, keep_checkpoints=keep_checkpoints, base_model=base_model,
         time_cap_minutes=time_cap_minutes, judgments=judgments, validation=validation,
         learning_rate=lr, epochs=epochs, max_steps=max_steps, batch_size=batch_size, max_length=max_length,
         num_negatives=negatives, seed=seed, eval_steps=eval_steps, early_stopping_patience=patience,
         dev_split=dev_split, precision=precision, report_to=report_to)


@app.command("rerank")
def rerank_command(
    output: OutputOpt,
    triplets: TripletsOpt = None, dataset: DatasetOpt = None, index: IndexOpt = None, config: ConfigOpt = None,
    base_model: BaseOpt = None,
    loss: Annotated[str | None, typer.Option("--loss", help="bce (pointwise) | lambda | listnet (listwise).")] = None,
    split: SplitOpt = "train", lr: LrOpt = None, epochs: EpochsOpt = None, max_steps: MaxStepsOpt = None,
    batch_size: BatchOpt = None, max_length: MaxLenOpt = None, negatives: NegOpt = None, seed: SeedOpt = None,
    eval_steps: EvalStepsOpt = None, patience: PatienceOpt = None, dev_split: DevSplitOpt = None,
    precision: PrecisionOpt = None, report_to: ReportOpt = None, resume: ResumeOpt = None,
    keep_checkpoints: KeepOpt = False, time_cap_minutes: CapOpt = None, es_url: EsUrlOption = DEFAULT_ES,
    judgments: JudgmentsOpt = None,
    distill: Annotated[bool, typer.Option("--distill", help="Small-data recipe: distil the hybrid ranker (BM25 on "
                                          "--index + --teacher-embedder) into the cross-encoder with a listwise KL "
                                          "loss, on every train query's hybrid top 30 plus corpus titles as queries "
                                          "(no new judgments); amount fixed by the data size; needs --dataset and "
                                          "--index (docs/reranker.md).")] = False,
    teacher_embedder: Annotated[str | None, typer.Option("--teacher-embedder", help="With --distill: the hybrid "
                                                         "teacher's embedder (folder, registry ref, HF id or URL). "
                                                         "Default: bundled all-MiniLM-L6-v2.")] = None,
    title_queries: Annotated[int | None, typer.Option("--title-queries", help="With --distill: corpus titles used "
                                                      "as extra teacher-labelled queries (default 200).")] = None,
    list_size: Annotated[int | None, typer.Option("--list-size", help="With --distill: documents per training list "
                                                  "(default 4).")] = None,
) -> None:
    """Fine-tune a cross-encoder reranker (BCE or a listwise loss) on judged queries with mined negatives, or with
    --distill from the hybrid ranker (the recipe for a few hundred judged queries)."""
    if distill:
        from searchtune.cli.train_distill import run_distill

        if triplets is not None or judgments or resume:
            fail("--distill builds its own lists from --dataset and --index: drop --triplets/--judgments/--resume")
        run_distill(dataset=dataset, index=index, output=output, es_url=es_url, split=split,
                    teacher_embedder=teacher_embedder, title_queries=title_queries, list_size=list_size,
                    time_cap_minutes=time_cap_minutes,
                    overrides=_overrides(base_model=base_model, loss=loss, learning_rate=lr, max_steps=max_steps,
                                         batch_size=batch_size, max_length=max_length, seed=seed,
                                         eval_steps=eval_steps, precision=precision, report_to=report_to))
        return
    if teacher_embedder or title_queries is not None or list_size is not None:
        fail("--teacher-embedder/--title-queries/--list-size only apply with --distill")
    _run("rerank", loss=loss, triplets=triplets, dataset=dataset, index=index, output=output, config=config,
         es_url=es_url, split=split, resume=resume, keep_checkpoints=keep_checkpoints, base_model=base_model,
         time_cap_minutes=time_cap_minutes, judgments=judgments,
         learning_rate=lr, epochs=epochs, max_steps=max_steps, batch_size=batch_size, max_length=max_length,
         num_negatives=negatives, seed=seed, eval_steps=eval_steps, early_stopping_patience=patience,
         dev_split=dev_split, precision=precision, report_to=report_to)
