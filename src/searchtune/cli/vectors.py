"""``searchtune vectors``: re-embed an index with another model version, list versions, roll back.

Each model version's vectors live in their own physical index behind the alias applications search; ``update``
builds the new one beside the live one and moves the alias atomically, ``rollback`` moves it back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from searchtune.cli.common import DEFAULT_ES, EsUrlOption, fail, out, progress_bar

app = typer.Typer(help="Vectors of model versions behind an alias: update (re-embed), list, rollback, prune.",
                  no_args_is_help=True)
IndexOpt = Annotated[str, typer.Option("--index", help="The alias applications search.")]


@contextmanager
def cluster_errors(es_url: str) -> Iterator[None]:
    """Expected failures of a vector build or alias move as one clear line (typer.Exit), never a traceback."""
    from elasticsearch import ApiError, TransportError  # here, not at the top: a second to import

    from searchtune.vectors.embedders import EmbedderError
    from searchtune.vectors.versions import VersionError

    try:
        from opensearchpy.exceptions import TransportError as OsTransportError
    except ImportError:  # pragma: no cover - opensearch-py is a runtime dependency
        OsTransportError = TransportError
    try:
        yield
    except (EmbedderError, VersionError, LookupError) as exc:
        fail(str(exc))
    except (ApiError, TransportError, OsTransportError) as exc:
        fail(f"cluster at {es_url} refused or did not answer: {exc}")


def open_model(model: str, embed_batch: int, max_length: int, es_url: str):
    from searchtune.vectors.embedders import open_embedder

    with cluster_errors(es_url):
        return open_embedder(model, batch_size=min(embed_batch, 64), max_length=max_length)


@app.command("update")
def update_command(
    index: IndexOpt,
    model: Annotated[str, typer.Option("--model", help="Folder, HF id, registry ref (name@prod) or embedding URL.")],
    field: Annotated[str | None, typer.Option("--vector-field", help="Vector field (default: the index's).")] = None,
    quantization: Annotated[str, typer.Option("--quantization", help="int8 | float")] = "int8",
    embed_batch: Annotated[int, typer.Option("--embed-batch", min=1)] = 128,
    max_length: Annotated[int, typer.Option("--max-length", min=8, help="Tokens per document (in-process).")] = 256,
    es_url: EsUrlOption = DEFAULT_ES,
) -> None:
    """Re-embed every document behind INDEX with MODEL into a new physical index, then move the alias to it.
    Searches keep using the old vectors until the new index is complete; the old index is kept for rollback."""
    from searchtune.vectors.build import update_vectors

    if quantization not in ("int8", "float"):
        fail(f"--quantization must be int8 or float, not {quantization!r}")
    client = es_client(es_url)
    with cluster_errors(es_url):
        total = int(client.count(index=index)["count"])
    embedder = open_model(model, embed_batch, max_length, es_url)
    try:
        with cluster_errors(es_url), progress_bar(f"re-embedding {index} with {embedder.identity.id}", total) as advance:
            result = update_vectors(client, index, embedder, field=field, quantization=quantization,
                                    embed_batch=embed_batch, on_progress=advance)
    finally:
        embedder.close()
    out.print(f"'{index}' now searches {result.index} ({result.count} documents, {result.spec.model.id}); "
              f"previous: {result.previous}; {result.seconds:.1f}s, {result.docs_per_second:.1f} docs/s")


@app.command("list")
def list_command(index: IndexOpt, es_url: EsUrlOption = DEFAULT_ES) -> None:
    """Physical indices built for INDEX, newest first, and which one is live."""
    from searchtune.vectors.versions import list_versions

    with cluster_errors(es_url):
        rows = list_versions(es_client(es_url), index)
    table = Table(title=f"versions of '{index}'")
    for column in ("index", "live", "model", "built", "documents", "replaced"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.index, "yes" if row.live else "", row.model or "-", row.built_at or "-", str(row.docs),
                      row.previous or "-")
    out.print(table)


@app.command("rollback")
def rollback_command(index: IndexOpt, es_url: EsUrlOption = DEFAULT_ES) -> None:
    """Move INDEX back to the physical index the live one replaced (one atomic alias move)."""
    from searchtune.vectors.versions import rollback

    with cluster_errors(es_url):
        previous = rollback(es_client(es_url), index)
    out.print(f"'{index}' now searches {previous}")


@app.command("prune")
def prune_command(index: IndexOpt, keep: Annotated[int, typer.Option("--keep", min=1)] = 2,
                  es_url: EsUrlOption = DEFAULT_ES) -> None:
    """Delete INDEX's oldest versions beyond the newest --keep (never the live one)."""
    from searchtune.vectors.versions import prune

    with cluster_errors(es_url):
        gone = prune(es_client(es_url), index, keep=keep)
    out.print(f"deleted {len(gone)} old version(s): {', '.join(gone) or '-'}")


def es_client(es_url: str):
    """The cluster client, imported on use (the CLI's --help never needs it)."""
    from searchtune.search.client import search_client

    return search_client(es_url)
