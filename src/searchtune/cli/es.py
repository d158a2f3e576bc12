"""``searchtune es``: the local Elasticsearch node (start, stop, status)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from searchtune.cli.common import fail, out
from searchtune.cli.node_commands import add_node_commands
from searchtune.nodes.elasticsearch_node import ELASTICSEARCH_VERSION, elasticsearch_node

app = typer.Typer(help=f"Run a local single-node Elasticsearch {ELASTICSEARCH_VERSION} (fetched from Maven Central "
                       "with mvn, cached, security off, bound to 127.0.0.1).", no_args_is_help=True)

add_node_commands(app, "elasticsearch", elasticsearch_node, default_port=9200, port_env="SEARCHTUNE_ES_PORT",
                  heap_env="SEARCHTUNE_ES_HEAP",
                  start_help="Start the node (idempotent: a running healthy node is left as it is) and wait until it is healthy.")


@app.command()
def connect(
    model_endpoint: Annotated[str, typer.Option("--model-endpoint", envvar="SEARCHTUNE_MODEL_ENDPOINT",
                                                help="URL of the model server's rerank route, e.g. "
                                                     "http://host:8080/v1/rerank.")],
    inference_id: Annotated[str, typer.Option(help="Name of the inference endpoint to create.")] = "custom-rerank-v1",
    service: Annotated[str, typer.Option(help="custom (8.19+/9.1+), alibabacloud-ai-search (8.16+) or "
                                              "hugging_face (8.19+/9.1+).")] = "custom",
    es_url: Annotated[str | None, typer.Option(
        "--es-url", "--url", envvar="SEARCHTUNE_ES_URL", help="Cluster URL (Elasticsearch).")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="SEARCHTUNE_MODEL_API_KEY",
                                                help="Key the cluster sends to the model server.")] = None,
    model_id: Annotated[str | None, typer.Option(help="Model name sent in the request (custom service).")] = None,
    fields: Annotated[str, typer.Option(help="BM25 fields of the printed example query.")] = "title^2,text",
    rerank_field: Annotated[str, typer.Option(help="Document field the reranker reads.")] = "text",
    dry_run: Annotated[bool, typer.Option(help="Print the request instead of sending it.")] = False,
) -> None:
    """Create a rerank inference endpoint on the cluster pointing at our model server (native path).

    Checks the licence first (the inference API needs Enterprise or a trial), then the version, then
    PUT _inference/rerank/ID, and prints a ready text_similarity_reranker query.
    """
    from searchtune.config import es_url as default_es_url
    from searchtune.search.native import NativeError, connect as native_connect, inference_endpoint_body, reranker_query

    query = reranker_query(inference_id, "example query", [f.strip() for f in fields.split(",") if f.strip()],
                           rerank_field)
    try:
        if dry_run:
            body = inference_endpoint_body(service, model_endpoint, api_key, model_id)
            out.print(f"PUT _inference/rerank/{inference_id}")
            out.print_json(json.dumps(body))
        else:
            result = native_connect(es_url or default_es_url(), model_endpoint, inference_id, service, api_key,
                                    model_id)
            out.print(f"inference endpoint [{result.inference_id}] created ({result.service}, licence "
                      f"{result.license}, Elasticsearch {result.version})")
    except (NativeError, ValueError) as exc:
        fail(str(exc))
    out.print("search with:")
    out.print_json(json.dumps(query))
