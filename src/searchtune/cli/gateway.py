"""``searchtune gateway``: search pipelines with neural reranking in front of any Elasticsearch/OpenSearch."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Annotated

import typer

from searchtune.cli.common import EsUrlOption, fail
from searchtune.config import es_url as default_es_url


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        for part in item.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                fail(f"{option} expects KEY=VALUE, got {part!r}")
            out[key.strip()] = value.strip()
    return out


def gateway_command(
    es_url: EsUrlOption = None,
    host: Annotated[str, typer.Option(envvar="SEARCHTUNE_GATEWAY_HOST", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SEARCHTUNE_GATEWAY_PORT", help="Port (0 = any free port).")] = 9201,
    timeout: Annotated[float, typer.Option(envvar="SEARCHTUNE_GATEWAY_TIMEOUT",
                                           help="Seconds a search waits for the model before falling back to the "
                                                "cluster's order (a pipeline's timeout_ms overrides it).")] = 0.5,
    breaker_failures: Annotated[int, typer.Option(help="Consecutive model failures that open the circuit.")] = 3,
    breaker_reset: Annotated[float, typer.Option(help="Seconds the circuit stays open before one trial call.")] = 10.0,
    pipeline_index: Annotated[str, typer.Option(envvar="SEARCHTUNE_GATEWAY_PIPELINE_INDEX",
                                                help="Cluster index holding pipelines (shared by replicas).")]
    = "searchtune-pipelines",
    cache_ttl: Annotated[float, typer.Option(help="Seconds a pipeline definition is cached per replica.")] = 1.0,
    model: Annotated[list[str] | None, typer.Option(
        "--model", envvar="SEARCHTUNE_GATEWAY_MODELS",
        help="MODEL_ID=URL for pipelines that name a model without an endpoint (OpenSearch's ml_opensearch "
             "shape). Repeatable or comma-separated.")] = None,
    default_pipeline: Annotated[list[str] | None, typer.Option(
        "--default-pipeline", help="INDEX=PIPELINE: searches on INDEX use PIPELINE unless they name one "
                                   "(search_pipeline=_none opts out). Repeatable.")] = None,
    ready_file: Annotated[Path | None, typer.Option(help="Write the gateway URL here once bound (for scripts).")]
    = None,
    log_format: Annotated[str, typer.Option(help="json (structured, default) or text.")] = "json",
) -> None:
    """Serve Elasticsearch's REST API on HOST:PORT, forwarding to --es-url, with search pipelines that rerank.

    PUT /_search/pipeline/NAME with a neural_rerank (vendor guide) or rerank (OpenSearch) processor, then search
    with ?search_pipeline=NAME. The model never fails a search: on timeout or error the cluster's order comes back
    with "searchtune": {"reranked": false, "fallback_reason": ...}. Everything else is proxied unchanged.
    """
    import uvicorn

    from searchtune.gateway.app import GatewaySettings, create_app
    from searchtune.gateway.logs import setup_json_logging

    if log_format == "json":
        setup_json_logging()
    elif log_format != "text":
        fail(f"--log-format must be json or text, got {log_format!r}")
    settings = GatewaySettings(es_url=es_url or default_es_url(), timeout_s=timeout, breaker_failures=breaker_failures,
                               breaker_reset_s=breaker_reset, pipeline_index=pipeline_index, cache_ttl_s=cache_ttl,
                               models=_pairs(model, "--model"),
                               default_pipelines=_pairs(default_pipeline, "--default-pipeline"))
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        fail(f"cannot bind {host}:{port}: {exc}")
    sock.listen(2048)
    bound_port = sock.getsockname()[1]
    url = f"http://{host}:{bound_port}"
    logging.getLogger("searchtune.gateway").info("gateway listening", extra={"event": "start", "url": url,
                                                                             "es_url": settings.es_url})
    if ready_file:
        from searchtune.storage import atomic_write

        atomic_write(ready_file, url)
    config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False, lifespan="on",
                            loop="auto", http="auto", timeout_graceful_shutdown=5, server_header=False,
                            date_header=False)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])


if __name__ == "__main__":
    typer.run(gateway_command)
