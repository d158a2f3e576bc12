"""``searchtune index``: load a dataset's corpus into the cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from elasticsearch import ApiError, TransportError

from searchtune.cli.common import EsUrlOption, DEFAULT_ES, fail, out, progress_bar
from searchtune.cli.errors import raise_cluster_error
from searchtune.data import DatasetError, load_dataset
from searchtune.search.client import es_client
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
    client = es_client(es_url)
    try:
        with progress_bar(f"indexing {ds.name}", len(ds.corpus)) as advance:
            count = build_index(client, index, ds.corpus.values(), total=len(ds.corpus), recreate=recreate,
                                analyzer=analyzer, on_progress=advance)
    except IndexExistsError as exc:
        fail(str(exc))
    except (ApiError, TransportError) as exc:
        raise_cluster_error(exc, es_url, index, doing=f"indexing into '{index}'")
    out.print(f"indexed {count} documents from {ds.name} into '{index}'")
