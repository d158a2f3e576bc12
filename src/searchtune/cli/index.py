"""``searchtune index``: load a dataset's corpus into the cluster, optionally with one vector per document."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from searchtune.cli.common import EsUrlOption, DEFAULT_ES, fail, out, progress_bar
from searchtune.cli.errors import raise_cluster_error
from searchtune.data import DatasetError, load_dataset
from searchtune.search import DEFAULT_ANALYZER

VectorsOption = Annotated[str | None, typer.Option(
    "--vectors", help="Also embed every document with this model: a folder, an HF id, a registry ref "
                      "(name@prod) or a `searchtune serve`/TEI/OpenAI-compatible URL. Writes a dense_vector field "
                      "(dims and similarity from the model, HNSW) and records the model in the index metadata.")]
VectorFieldOption = Annotated[str, typer.Option("--vector-field", help="Name of the dense_vector field.")]
QuantizationOption = Annotated[str, typer.Option(
    "--quantization", help="int8 (int8_hnsw, default: NDCG@10 within 0.005 of float on SciFact) | float (hnsw).")]
EmbedBatchOption = Annotated[int, typer.Option("--embed-batch", min=1, help="Documents embedded per batch.")]
MaxLengthOption = Annotated[int, typer.Option(
    "--max-length", min=8, help="Tokens per document for an in-process model; use the server's --max-length so "
                                "that queries embedded by `searchtune serve` land in the same space.")]


def index_command(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (BEIR, JSONL+TREC qrels, Cranfield, TREC text).")],
    index: Annotated[str, typer.Option("--index", help="Index (alias) name to create.")],
    recreate: Annotated[bool, typer.Option(help="Rebuild an existing index; the old one serves until the swap.")] = False,
    analyzer: Annotated[str, typer.Option(envvar="SEARCHTUNE_ANALYZER",
                                          help="Analyzer for title/text (e.g. 'english' where analysis-common exists).")] = DEFAULT_ANALYZER,
    vectors: VectorsOption = None,
    vector_field: VectorFieldOption = "embedding",
    quantization: QuantizationOption = "int8",
    embed_batch: EmbedBatchOption = 128,
    max_length: MaxLengthOption = 256,
    es_url: EsUrlOption = DEFAULT_ES,
) -> None:
    """Index a dataset's corpus with an explicit mapping (id, title, text), bulk-loaded with a progress bar, and check
    the document count at the end. An existing index is never overwritten silently."""
    from searchtune.search.client import CLUSTER_ERRORS, search_client  # here: a second to import, and --help
    from searchtune.search.indexing import IndexExistsError, build_index   # of every command needs none of it

    try:
        ds = load_dataset(dataset)
    except DatasetError as exc:
        fail(str(exc))
    try:
        client = search_client(es_url)  # Elasticsearch (dense_vector) or OpenSearch (k-NN plugin)
    except CLUSTER_ERRORS as exc:
        raise_cluster_error(exc, es_url, index, doing="connecting")
    if vectors:
        _index_with_vectors(client, ds, index, recreate, analyzer, vectors, vector_field, quantization, embed_batch,
                            max_length, es_url)
        return
    try:
        with progress_bar(f"indexing {ds.name}", len(ds.corpus)) as advance:
            count = build_index(client, index, ds.corpus.values(), total=len(ds.corpus), recreate=recreate,
                                analyzer=analyzer, on_progress=advance)
    except IndexExistsError as exc:
        fail(str(exc))
    except CLUSTER_ERRORS as exc:
        raise_cluster_error(exc, es_url, index, doing=f"indexing into '{index}'")
    out.print(f"indexed {count} documents from {ds.name} into '{index}'")


def _index_with_vectors(client, ds, index, recreate, analyzer, model, field, quantization, embed_batch, max_length,
                        es_url):
    from searchtune.cli.vectors import cluster_errors, open_model
    from searchtune.search.indexing import index_exists
    from searchtune.vectors.build import build_vector_index

    if quantization not in ("int8", "float"):
        fail(f"--quantization must be int8 or float, not {quantization!r}")
    with cluster_errors(es_url):
        exists = index_exists(client, index)
    if exists and not recreate:
        fail(f"index '{index}' already exists at {es_url}; pass --recreate to rebuild it, or use "
             f"`searchtune vectors update --index {index} --model MODEL` to re-embed it")
    embedder = open_model(model, embed_batch, max_length, es_url)
    try:
        with cluster_errors(es_url), progress_bar(f"indexing {ds.name} with {embedder.identity.id} vectors",
                                                  len(ds.corpus)) as advance:
            result = build_vector_index(client, index, ds.corpus.values(), embedder, total=len(ds.corpus),
                                        field=field, quantization=quantization, analyzer=analyzer,
                                        embed_batch=embed_batch, replace_plain=recreate, on_progress=advance)
    finally:
        embedder.close()
    out.print(f"indexed {result.count} documents from {ds.name} into '{index}' ({result.index}) with "
              f"{result.spec.dims}-d {result.spec.similarity} vectors ({result.spec.index_type}) from "
              f"{result.spec.model.id}: {result.seconds:.1f}s, {result.docs_per_second:.1f} docs/s")
