"""``searchtune gateway``: search pipelines with neural reranking in front of any Elasticsearch/OpenSearch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from searchtune.cli.common import EsUrlOption, bind_listener, fail
from searchtune.config import es_url as default_es_url
from searchtune.gateway.defaults import DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT_S
from searchtune.gateway.secrets import DEFAULT_SECRET_PREFIX


def _items(values: list[str] | None) -> list[str]:
    """Repeatable and comma-separated values, flattened."""
    return [part.strip() for item in values or [] for part in item.split(",") if part.strip()]


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
                                                "cluster's order (a pipeline's timeout_ms overrides it).")]
    = DEFAULT_TIMEOUT_S,
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
    es_api_key: Annotated[str | None, typer.Option(envvar="SEARCHTUNE_ES_API_KEY", help="The gateway's own cluster "
                                                   "API key (else user:pass in --es-url), used for its pipelines "
                                                   "index only.")] = None,
    lend_credentials: Annotated[bool, typer.Option("--lend-credentials", help="Send the gateway's own cluster "
                                                   "credentials with client requests that carry none (off: "
                                                   "anonymous clients stay anonymous).")] = False,
    pipeline_auth: Annotated[str, typer.Option(envvar="SEARCHTUNE_GATEWAY_PIPELINE_AUTH", help="Who may write "
                                               "pipelines: admin-key (X-Searchtune-Admin-Key) or cluster (the "
                                               "caller's own credentials, checked by the cluster).")] = "admin-key",
    admin_key: Annotated[str | None, typer.Option(envvar="SEARCHTUNE_GATEWAY_ADMIN_KEY", help="Admin key for "
                                                  "pipeline writes (kept only as its sha256).")] = None,
    admin_key_hash: Annotated[list[str] | None, typer.Option(envvar="SEARCHTUNE_GATEWAY_ADMIN_KEY_HASH",
                                                             help="sha256 of an admin key (repeatable).")] = None,
    secret_prefix: Annotated[list[str] | None, typer.Option(envvar="SEARCHTUNE_GATEWAY_SECRET_PREFIXES",
                                                            help="Environment variable prefix pipeline headers may "
                                                                 "reference (repeatable or comma-separated; "
                                                                 "default SEARCHTUNE_SECRET_).")] = None,
    allow_endpoint: Annotated[list[str] | None, typer.Option(envvar="SEARCHTUNE_GATEWAY_ALLOW_ENDPOINTS",
                                                             help="Model host pipelines may call besides loopback: "
                                                                  "host, host:port, *.domain, CIDR or scheme://host "
                                                                  "(repeatable or comma-separated).")] = None,
    max_body_bytes: Annotated[int, typer.Option(envvar="SEARCHTUNE_GATEWAY_MAX_BODY_BYTES", help="Largest request "
                                                "body accepted (413 above).")] = DEFAULT_MAX_BODY_BYTES,
) -> None:
    """Serve Elasticsearch's REST API on HOST:PORT, forwarding to --es-url, with search pipelines that rerank.

    PUT /_search/pipeline/NAME with a neural_rerank (vendor guide) or rerank (OpenSearch) processor, then search
    with ?search_pipeline=NAME. The model never fails a search: on timeout or error the cluster's order comes back
    with "searchtune": {"reranked": false, "fallback_reason": ...}. Everything else is proxied unchanged.
    """
    import uvicorn

    from searchtune.gateway.app import GatewaySettings, create_app
    from searchtune.gateway.credentials import redact_url
    from searchtune.gateway.logs import setup_json_logging
    from searchtune.keys import parse_key_hashes

    if log_format == "json":
        setup_json_logging()
    elif log_format != "text":
        fail(f"--log-format must be json or text, got {log_format!r}")
    try:
        settings = GatewaySettings(
            es_url=es_url or default_es_url(), timeout_s=timeout, breaker_failures=breaker_failures,
            breaker_reset_s=breaker_reset, pipeline_index=pipeline_index, cache_ttl_s=cache_ttl,
            models=_pairs(model, "--model"), default_pipelines=_pairs(default_pipeline, "--default-pipeline"),
            es_api_key=es_api_key, lend_credentials=lend_credentials, pipeline_auth=pipeline_auth,
            admin_key_hashes=parse_key_hashes([admin_key] if admin_key else [], admin_key_hash),
            secret_prefixes=tuple(_items(secret_prefix)) or (DEFAULT_SECRET_PREFIX,),
            allow_endpoints=_items(allow_endpoint), max_body_bytes=max_body_bytes)
        app = create_app(settings)  # checks the policies (bad --allow-endpoint, --pipeline-auth) before binding
    except ValueError as exc:
        fail(str(exc))
    admin_key = None  # only its hash is kept
    sock, url = bind_listener(host, port)
    logging.getLogger("searchtune.gateway").info("gateway listening", extra={"event": "start", "url": url,
                                                                             "es_url": redact_url(settings.es_url)})
    if ready_file:
        from searchtune.storage import atomic_write

        atomic_write(ready_file, url)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            loop="auto", http="auto", timeout_graceful_shutdown=5, server_header=False,
                            date_header=False)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])


if __name__ == "__main__":
    typer.run(gateway_command)
