"""``searchtune data ...``: validate, split, mine hard negatives, stage to a store and read staged datasets back."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from searchtune.cli.checks import require_index, require_split
from searchtune.cli.common import DEFAULT_ES, EsUrlOption, console, fail, out, progress_bar
from searchtune.cli.errors import raise_cluster_error
from searchtune.config import store_uri
from searchtune.data.records import DatasetError

app = typer.Typer(help="Training data: validate, split by query, mine hard negatives, stage to object storage.",
                  no_args_is_help=True)

EndpointOption = Annotated[str | None, typer.Option(
    "--endpoint-url", envvar="SEARCHTUNE_S3_ENDPOINT_URL",
    help="S3-compatible endpoint (MinIO, OSS's S3 endpoint, ...); for oss:// the OSS endpoint.")]


def _fail(message: str) -> None:
    """One red line (``fail`` escapes it: data and store messages may hold brackets)."""
    fail(message)


class Guard(str, Enum):
    both = "both"
    margin = "margin"


class OutFormat(str, Enum):
    triplets = "triplets"
    pairs = "pairs"


# ---------------------------------------------------------------- validate


@app.command("validate")
def validate_command(
    paths: Annotated[list[Path], typer.Argument(help="Dataset folders (BEIR, JSONL + TREC qrels, Cranfield, TREC "
                                                     "text) and/or graded-pairs / triplets JSONL files; a folder of collections is searched two levels deep.")],
    strict: Annotated[bool, typer.Option(help="Treat warnings as errors (non-zero exit).")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every report as JSON.")] = None,
    max_errors: Annotated[int, typer.Option(help="Errors listed per file before summarising.")] = 50,
) -> None:
    """Check schema (errors name file, line and field), then print statistics: queries, documents, judged pairs,
    positives per query, label histogram, duplicates, judged documents missing from the corpus, queries leaking
    across splits. Exits 1 on errors; warnings do not fail unless --strict."""
    from searchtune.data.validate import discover_datasets, validate_path

    reports = [validate_path(found, max_errors=max_errors) for path in paths for found in discover_datasets(path)]
    failed = False
    for report in reports:
        out.print(_stats_table(report))
        for error in report.errors:
            console.print(f"[bold red]error:[/] {escape(error)}")
        for warning in report.warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}")
        bad = bool(report.errors) or (strict and bool(report.warnings))
        failed |= bad
        verdict = "[bold red]FAILED[/]" if bad else "[bold green]OK[/]"
        out.print(f"{verdict} {escape(report.path)}: {len(report.errors)} errors, {len(report.warnings)} warnings")
    if json_out:
        from searchtune.eval.metrics import write_json

        write_json({"reports": [r.to_dict() for r in reports]}, json_out)
    if failed:
        raise typer.Exit(1)


def _stats_table(report) -> Table:
    table = Table(title=escape(f"{report.path} ({report.layout})"), show_header=True, title_justify="left")
    table.add_column("statistic")
    table.add_column("value", overflow="fold")
    for key, value in report.stats.items():
        if key == "splits":
            for split, numbers in value.items():
                for sub, figure in numbers.items():
                    table.add_row(escape(f"{split}: {sub.replace('_', ' ')}"), escape(_fmt(figure)))
        else:
            table.add_row(key.replace("_", " "), escape(_fmt(value)))
    return table


def _fmt(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return str(value)


# ---------------------------------------------------------------- split


@app.command("split")
def split_command(
    source: Annotated[Path, typer.Argument(help="Dataset folder, or a graded-pairs / triplets JSONL file.")],
    out_dir: Annotated[Path, typer.Argument(help="Output folder: BEIR layout for datasets, <split>.jsonl for "
                                                 "pairs/triplets files.")],
    sizes: Annotated[str, typer.Option("--sizes", help="Per split: fraction, query count or 'rest', e.g. "
                                                       "'train=0.9,dev=0.1' or 'dev=100,train=rest'.")] = "train=0.9,dev=0.1",
    seed: Annotated[int, typer.Option(envvar="SEARCHTUNE_SEED", help="Shuffle seed (same seed, same split).")] = 42,
    source_split: Annotated[str, typer.Option(help="Split of a dataset folder to divide (others are kept).")] = "train",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
) -> None:
    """Split by query: all judgments of a query (and of queries with identical text) land in one split."""
    from searchtune.data.examples import detect_format, load_examples, write_graded_pairs, write_triplets
    from searchtune.data.loaders import load_dataset
    from searchtune.data.split import parse_sizes, split_by_query, split_examples
    from searchtune.data.writers import write_beir

    try:
        parsed = parse_sizes(sizes)
    except ValueError as exc:
        _fail(str(exc))
    try:
        if source.is_file() and detect_format(source) is not None:
            fmt, examples = load_examples(source)
            parts = split_examples(examples, parsed, seed=seed)
            if out_dir.exists() and not overwrite and any(out_dir.iterdir()):
                _fail(f"{out_dir} is not empty; choose another folder or pass --overwrite")
            writer = write_triplets if fmt == "triplets" else write_graded_pairs
            for name, items in parts.items():
                writer(items, out_dir / f"{name}.jsonl")
                out.print(f"{name}: {len(items)} {fmt} ({len({e.query_id or e.query for e in items})} queries) "
                          f"-> {out_dir / (name + '.jsonl')}")
            return
        dataset = load_dataset(source)
        require_split(dataset, source_split, "--source-split")
        result = split_by_query(dataset, parsed, seed=seed, source_split=source_split)
        write_beir(result, out_dir, overwrite=overwrite)
    except (DatasetError, ValueError) as exc:
        _fail(str(exc))
    for name in parsed:
        judged = result.qrels[name]
        out.print(f"{name}: {len(judged)} queries, {sum(len(j) for j in judged.values())} judged pairs")
    out.print(f"wrote BEIR dataset with splits {', '.join(result.splits)} to {out_dir}")


# ---------------------------------------------------------------- mine-negatives


@app.command("mine-negatives")
def mine_command(
    dataset_path: Annotated[Path, typer.Argument(metavar="DATASET", help="Dataset folder with judgments.")],
    index: Annotated[str, typer.Option("--index", help="Index holding the dataset's corpus.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output JSONL (triplets or graded pairs).")],
    split: Annotated[str, typer.Option(help="Split whose queries are mined.")] = "train",
    top_k: Annotated[int, typer.Option("--top-k", help="BM25 candidates per query.")] = 30,
    num_negatives: Annotated[int, typer.Option("--num-negatives", help="Negatives kept per query.")] = 7,
    margin: Annotated[float, typer.Option(help="Relative margin of the false-negative guard: candidates scoring "
                                               "within margin*score(positive) of the best positive are dropped.")] = 0.05,
    guard: Annotated[Guard, typer.Option(help="'both': also drop candidates ranked above the positive; "
                                              "'margin': only the margin rule.")] = Guard.both,
    fields: Annotated[str, typer.Option(help="Fields and boosts for multi_match, e.g. 'title^2,text'.")] = "title,text",
    out_format: Annotated[OutFormat, typer.Option("--format", help="Write triplets or graded pairs "
                                                                   "(positive 1, negatives 0).")] = OutFormat.triplets,
    dense_model: Annotated[str | None, typer.Option(help="Embedding model (HF id or path; 'default' = the bundled "
                                                         "base model) to mine dense negatives too.")] = None,
    dense_negatives: Annotated[int, typer.Option(help="How many of the negatives come from the dense model "
                                                     "(0 with --dense-model: half of --num-negatives).")] = 0,
    batch_size: Annotated[int, typer.Option(help="Queries per msearch request and per checkpoint.")] = 32,
    max_queries: Annotated[int | None, typer.Option(help="Mine only the first N queries (for trials).")] = None,
    stats_json: Annotated[Path | None, typer.Option("--stats-json", help="Write mining statistics as JSON.")] = None,
    es_url: EsUrlOption = DEFAULT_ES,
) -> None:
    """BM25 top-k from the cluster minus judged positives, through a false-negative guard, hardest first.
    Resumable: an interrupted run continues where it stopped when started again with the same settings
    (progress is kept in OUTPUT.ckpt; delete it and the output to start over)."""
    from searchtune.data.examples import triplets_to_graded_pairs, write_graded_pairs
    from searchtune.data.loaders import load_dataset
    from searchtune.data.mining import MiningError, mine_negatives
    from searchtune.search.client import CLUSTER_ERRORS, search_client
    from searchtune.search.retrieval import parse_fields
    from searchtune.search.retriever import BM25Retriever

    if dense_model and not dense_negatives:
        dense_negatives = max(1, num_negatives // 2)
    try:
        ds = load_dataset(dataset_path)
    except DatasetError as exc:
        _fail(str(exc))
    require_split(ds, split, "--split")
    total = len(ds.split_queries(split))
    if max_queries is not None:
        total = min(total, max_queries)
    work = output if out_format is OutFormat.triplets else output.with_name(output.name + ".triplets.jsonl")
    try:
        client = search_client(es_url)
    except CLUSTER_ERRORS as exc:
        raise_cluster_error(exc, es_url, index, doing="connecting")
    require_index(client, index, es_url)
    try:
        with progress_bar(f"mining {ds.name}/{split}", total) as advance:
            result = mine_negatives(BM25Retriever(client, index, parse_fields(fields)), ds, split=split, top_k=top_k,
                                    num_negatives=num_negatives, margin=margin, on_progress=advance,
                                    drop_above_positive=guard is Guard.both, batch_size=batch_size, output=work,
                                    dense_model=dense_model, dense_negatives=dense_negatives,
                                    max_queries=max_queries)
    except MiningError as exc:
        _fail(str(exc))
    except CLUSTER_ERRORS as exc:
        raise_cluster_error(exc, es_url, index, doing=f"search on '{index}'")
    if out_format is OutFormat.pairs:
        count = write_graded_pairs(triplets_to_graded_pairs(result.triplets), output)
        work.unlink(missing_ok=True)
        work.with_name(work.name + ".ckpt").unlink(missing_ok=True)
        what = f"{count} graded pairs"
    else:
        what = f"{len(result.triplets)} triplets"
    stats = result.stats()
    out.print(f"{what} -> {output}")
    out.print(f"{stats['queries']} queries in {stats['seconds']}s ({stats['queries_per_second']} queries/s), "
              f"{stats['resumed_queries']} resumed; guard dropped {stats['dropped_by_guard']} of "
              f"{stats['candidates']} BM25 candidates ({stats['drop_share']:.1%} incl. dense); "
              f"{stats['queries_without_negatives']} queries kept no negative")
    if stats_json:
        from searchtune.eval.metrics import write_json

        write_json(stats, stats_json)


# ---------------------------------------------------------------- staging


@app.command("stage")
def stage_command(
    source: Annotated[Path, typer.Argument(help="Dataset folder or pairs/triplets JSONL file.")],
    uri: Annotated[str | None, typer.Argument(help="Target: fsspec URI (s3://bucket/prefix, oss://..., a path) or a "
                                                   f"bare name in the store (now: {store_uri()}). Default: the "
                                                   "dataset's name (scifact for .../scifact/beir_format_derived).")]
    = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a dataset already staged there.")] = False,
    endpoint_url: EndpointOption = None,
) -> None:
    """Validate, copy every file, and write manifest.json (files, sha256, counts, schema version, source) last, so
    an interrupted upload never looks like a dataset. The store is $SEARCHTUNE_STORE ($SEARCHTUNE_HOME/store when
    unset); `searchtune data verify NAME` reads it back."""
    from searchtune.data.stage import StageError, resolve_uri, stage_dataset

    target = resolve_uri(uri or default_stage_name(source))
    total = sum(p.stat().st_size for p in ([source] if source.is_file() else source.rglob("*")) if p.is_file()) \
        if source.exists() else 0
    try:
        with progress_bar(f"staging {source.name}", total) as advance:
            manifest = stage_dataset(source, target, overwrite=overwrite, endpoint_url=endpoint_url,
                                     on_progress=advance)
    except StageError as exc:
        _fail(str(exc))
    size = sum(f.size for f in manifest.files)
    out.print(f"staged {manifest.name} ({len(manifest.files)} files, {size:,} bytes, {json.dumps(manifest.counts)}) "
              f"-> {target}")


def default_stage_name(source: Path) -> str:
    """The dataset's name, not its layout folder's: ``.../scifact/beir_format_derived`` stages as ``scifact`` (the
    loaders name datasets the same way), a ``triplets.jsonl`` file as ``triplets``."""
    if source.is_file():
        return source.stem
    resolved = source.resolve()
    return resolved.parent.name if resolved.name.startswith("beir") else resolved.name


@app.command("verify")
def verify_command(
    uri: Annotated[str, typer.Argument(help=f"Staged dataset URI or name in the store (now: {store_uri()}).")],
    endpoint_url: EndpointOption = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Where remote datasets are downloaded.")] = None,
) -> None:
    """Read the manifest, fetch remote files into the local cache, check every sha256, print the verified path."""
    from searchtune.data.stage import StageError, open_staged, read_manifest

    try:
        manifest = read_manifest(uri, endpoint_url=endpoint_url)
        path = open_staged(uri, cache_dir=cache_dir, endpoint_url=endpoint_url)
    except StageError as exc:
        _fail(str(exc))
    console.print(f"[green]verified[/] {manifest.name}: {len(manifest.files)} files, layout {manifest.layout}, "
                  f"counts {json.dumps(manifest.counts)}, staged {manifest.created} from {manifest.source}")
    typer.echo(str(path))  # plain stdout, never wrapped: `cd $(searchtune data verify URI)` works


@app.command("list")
def list_command(
    base: Annotated[str | None, typer.Argument(help="Folder/prefix holding staged datasets (default: the store's "
                                                    "datasets/).")] = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """Staged datasets under BASE: only those whose manifest was written (finished uploads)."""
    from searchtune.data.stage import StageError, list_staged, storage_options_for

    try:
        found = list_staged(base, storage_options=storage_options_for(base, endpoint_url) if base else None)
    except StageError as exc:
        _fail(str(exc))
    for uri, manifest in found:
        out.print(f"{uri}\t{manifest.name}\t{manifest.layout}\t{manifest.created}\t{json.dumps(manifest.counts)}")
    if not found:
        console.print("no staged datasets found")
