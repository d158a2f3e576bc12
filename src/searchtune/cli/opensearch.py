"""``searchtune opensearch``: a local OpenSearch node with ml-commons + neural-search, and in-cluster reranking."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from searchtune.cli.common import fail, out
from searchtune.cli.node_commands import add_node_commands
from searchtune.search.opensearch_ml import ClientConfig, OpenSearchML, OpenSearchMLError
from searchtune.search.opensearch_ml import connect as ml_connect
from searchtune.search.opensearch_ml import delete as ml_delete
from searchtune.search.opensearch_ml import smoke_query
from searchtune.nodes.opensearch_node import OPENSEARCH_VERSION, opensearch_node

DEFAULT_OS_URL = "http://127.0.0.1:9400"

app = typer.Typer(help=f"Run a local single-node OpenSearch {OPENSEARCH_VERSION} with ml-commons, k-NN and "
                       "neural-search (fetched from Maven Central with mvn, cached, no security plugin, bound to "
                       "127.0.0.1), and wire a searchtune rerank endpoint into its search pipelines.",
                  no_args_is_help=True)

add_node_commands(app, "opensearch", opensearch_node, default_port=9400, port_env="SEARCHTUNE_OS_PORT",
                  heap_env="SEARCHTUNE_OS_HEAP",
                  start_help="Start the node (idempotent) and wait until it is healthy. The first start fetches the "
                             "distribution and the plugins with Maven and installs them (about a minute; ~0.5 GB, cached).")

OsUrlOpt = Annotated[str, typer.Option("--os-url", "--url", envvar="SEARCHTUNE_OS_URL", help="OpenSearch URL.")]


@app.command()
def connect(
    pipeline: Annotated[str, typer.Option("--pipeline", help="Search pipeline to create or update.")]
    = "searchtune-rerank",
    model_endpoint: Annotated[str | None, typer.Option(
        "--model-endpoint", envvar="SEARCHTUNE_MODEL_ENDPOINT",
        help="Base URL of a Cohere-style rerank server (e.g. `searchtune serve`), or its full /v1/rerank URL.")] = None,
    name: Annotated[str, typer.Option("--name", help="Name of the connector and the model (found by name on re-runs).")]
    = "searchtune-rerank",
    model: Annotated[str | None, typer.Option("--model", help="Model name sent in the request body, if the server "
                                                               "hosts several.")] = None,
    document_fields: Annotated[str, typer.Option(
        "--document-fields", help="Comma-separated fields the rerank processor sends (concatenated without a "
                                  "separator by OpenSearch).")] = "title,text",
    connection_timeout_ms: Annotated[int, typer.Option(help="Connector connect timeout (ms).")] = 5000,
    read_timeout_s: Annotated[int, typer.Option(help="Connector read timeout (s).")] = 30,
    max_connection: Annotated[int, typer.Option(help="Connector connection pool size.")] = 30,
    retries: Annotated[int, typer.Option(help="Connector retries on failure (ml-commons backoff).")] = 0,
    api_key: Annotated[str | None, typer.Option(envvar="SEARCHTUNE_API_KEY",
                                                help="Bearer key the endpoint expects (stored as a credential).")]
    = None,
    post_process: Annotated[str, typer.Option(
        "--post-process", help="script: a Painless post-process (default; works with any float formatting); "
                               "builtin: connector.post_process.cohere.rerank, which OpenSearch 2.19.1 breaks on "
                               "scores printed with more than 18 characters.")] = "script",
    index: Annotated[str | None, typer.Option("--index", help="Index for a test search through the pipeline "
                                                              "(without it only a predict call is tested).")]
    = None,
    test_query: Annotated[str, typer.Option(help="Text of the test query run through the pipeline.")] = "test",
    delete: Annotated[bool, typer.Option("--delete", help="Remove the pipeline, model and connector instead.")]
    = False,
    os_url: OsUrlOpt = DEFAULT_OS_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Create (or update) the ml-commons connector, remote model and a search pipeline with a ``rerank`` response
    processor, then run one test query. Search with ``?search_pipeline=NAME`` and
    ``"ext": {"rerank": {"query_context": {"query_text": "..."}}}``."""
    try:
        if delete:
            removed = ml_delete(os_url, pipeline, name=name)
            if as_json:
                out.print_json(json.dumps({"removed": removed}))
            else:
                out.print("removed: " + (", ".join(removed) if removed else "nothing (none existed)"))
            return
        if not model_endpoint:
            fail("--model-endpoint is required (the URL of `searchtune serve`, e.g. http://127.0.0.1:8080)")
        config = ClientConfig(connection_timeout_ms=connection_timeout_ms, read_timeout_s=read_timeout_s,
                              max_connection=max_connection, max_retry_times=retries)
        fields = [f.strip() for f in document_fields.split(",") if f.strip()]
        setup = ml_connect(os_url, model_endpoint, pipeline, name=name, model=model, document_fields=fields,
                           client_config=config, api_key=api_key, post_process=post_process)
        with OpenSearchML(os_url) as ml:
            predicted = ml.predict_similarity(setup.model_id, test_query, [test_query, "unrelated text"])
        hits = smoke_query(os_url, index, pipeline, test_query, fields, size=5) if index else None
    except ValueError as exc:
        fail(str(exc))
    except OpenSearchMLError as exc:
        fail(f"OpenSearch at {os_url}: {exc}")
    result = setup.to_dict()
    result["test_predict"] = predicted
    if hits is not None:
        result["test_query"] = {"index": index, "query": test_query,
                                "hits": [{"_id": h["_id"], "_score": h["_score"]} for h in hits]}
    if as_json:
        out.print_json(json.dumps(result))
        return
    out.print(f"pipeline [bold]{pipeline}[/] -> model {setup.model_id} -> connector {setup.connector_id} -> "
              f"{setup.endpoint}")
    out.print(f"created: {', '.join(setup.created) or '-'}; updated: {', '.join(setup.updated) or '-'}")
    out.print(f"test predict through the model: scores {', '.join(f'{x:.3f}' for x in predicted)}")
    if hits is not None:
        out.print(f"test query on '{index}': {len(hits)} hits reranked, top "
                  + ", ".join(f"{h['_id']} ({h['_score']:.3f})" for h in hits[:3]))
