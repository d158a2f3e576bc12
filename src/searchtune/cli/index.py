"""``searchtune index``: load a dataset's corpus into the cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from searchtune.cli.common import EsUrlOption, DEFAULT_ES, fail, out, progress_bar
from searchtune.data import DatasetError, load_dataset
from searchtune.search.client import CLUSTER_ERRORS, search_client
from searchtune.search.indexing import DEFAULT_ANALYZER, IndexExistsError, build_index


def index_command(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (BEIR, JSONL+TREC qrels, Cranfield, TREC text).")],
    index: Annotated[str, typer.Option("--index", help="Index (alias) name to create.")],
    recreate: Annotated[bool, typer.Option(help="Rebuild an existing index; the old one serves until the swap.")] = False,
    analyzer: Annotated[str, typer.Option(envvar="SEARCHTUNE_ANALYZER",
                                          help="Analyzer for title/text (e.g. 'english' where analysis-common exists).")] = DEFAULT_ANALYZER,
    es_url: EsUrlOption = DEFAULT_ES,
) -> None:
    """Index a dataset's corpus with an explicit mapping (id, title, text), bulk-loaded with a progress bar, and check
    the document count at the end. An existing index is never overwritten silently."""
    try:
        ds = load_dataset(dataset)
    except DatasetError as exc:
        fail(str(exc))
    try:
        client = search_client(es_url)
        with progress_bar(f"indexing {ds.name}", len(ds.corpus)) as advance:
            count = build_index(client, index, ds.corpus.values(), total=len(ds.corpus), recreate=recreate,
                                analyzer=analyzer, on_progress=advance)
    except IndexExistsError as exc:
        fail(str(exc))
    except CLUSTER_ERRORS as exc:
        fail(f"cluster at {es_url} refused or did not answer: {exc}")
    out.print(f"indexed {count} documents from {ds.name} into '{index}'")
