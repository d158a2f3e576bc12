"""``searchtune serve``: the inference endpoint for a registered model or a model folder."""

from __future__ import annotations

from typing import Annotated

import typer

from pathlib import Path

from searchtune.cli.common import fail
from searchtune.cli.errors import require_free_port
from searchtune.config import store_uri


def serve_command(
    model: Annotated[str, typer.Option("--model", "-m", envvar="SEARCHTUNE_SERVE_MODEL",
                                       help="NAME@ALIAS (e.g. mymodel@prod, followed on promote), NAME@VERSION, "
                                            "NAME (latest) from the registry, or a model folder.")],
    backend: Annotated[str, typer.Option(help="auto (fastest this hardware supports), torch, onnx or openvino.")] = "auto",
    quantize: Annotated[str, typer.Option(help="ONNX quantization: auto (int8 for onnx), int8 or none.")] = "auto",
    precision: Annotated[str, typer.Option(help="torch/openvino precision: auto (bf16 where the CPU/GPU is fast at it), "
                                                "fp32, bf16, fp16 (torch only).")] = "auto",
    device: Annotated[str | None, typer.Option(help="torch device (cpu, cuda). Default: cuda if present.")] = None,
    max_length: Annotated[int, typer.Option("--max-length", help="Tokens per input; longer ones are truncated "
                                                                   "(and counted in /metrics); 256 like training and eval.")] = 256,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8080,
    api_key: Annotated[list[str] | None, typer.Option("--api-key", envvar="SEARCHTUNE_API_KEY",
                                                      help="Accepted bearer key (repeatable; kept only as its "
                                                           "sha256). Prefer the env var: args show in ps.")] = None,
    api_key_hash: Annotated[list[str] | None, typer.Option("--api-key-hash", envvar="SEARCHTUNE_API_KEY_HASH",
                                                           help="Accepted key given as sha256 hex.")] = None,
    store: Annotated[str | None, typer.Option(envvar="SEARCHTUNE_STORE", help=f"Registry store (fsspec URI; now: "
                                                                          f"{store_uri()}).")] = None,
    max_documents: Annotated[int, typer.Option(help="Documents (or inputs) per request; more is 413.")] = 1000,
    max_document_chars: Annotated[int, typer.Option(help="Characters per document; more is 413.")] = 100_000,
    max_body_bytes: Annotated[int, typer.Option(help="Request body size; more is 413.")] = 10 * 1024 * 1024,
    timeout: Annotated[float, typer.Option(help="Seconds per request before a 504.")] = 30.0,
    max_batch_inputs: Annotated[int, typer.Option(help="Model inputs per forward pass.")] = 64,
    max_batch_tokens: Annotated[int, typer.Option(help="Padded tokens per forward pass.")] = 16384,
    max_wait_ms: Annotated[float, typer.Option(help="How long an idle batcher waits for more requests.")] = 2.0,
    poll_interval: Annotated[float, typer.Option(help="Seconds between registry checks for a moved alias "
                                                      "(hot swap); 0 disables.")] = 5.0,
    graceful_timeout: Annotated[float, typer.Option(help="Seconds to finish in-flight requests on shutdown.")] = 30.0,
) -> None:
    """Serve reranking and embeddings over Cohere, DashScope, TEI/HF, Alibaba and OpenAI APIs (docs at /docs)."""
    # mistakes first, before the slow imports and the model load
    require_free_port(port, "serve --port", "stop what listens there, or pass another --port", host=host)
    if not Path(model).expanduser().exists() and ("/" in model or model.startswith((".", "~"))):
        fail(f"--model {model}: no such model folder (the path does not exist); give an existing folder or a "
             "registry version NAME@ALIAS (see `searchtune models list`)")
    import uvicorn

    from searchtune.serve.app import create_app
    from searchtune.keys import parse_key_hashes
    from searchtune.serve.settings import ServeSettings

    if backend not in ("auto", "torch", "onnx", "openvino"):
        fail(f"--backend must be auto, torch, onnx or openvino, not '{backend}'")
    if quantize not in ("auto", "int8", "none"):
        fail(f"--quantize must be auto, int8 or none, not '{quantize}'")
    try:
        hashes = parse_key_hashes(api_key, api_key_hash)
    except ValueError as exc:
        fail(str(exc))
    settings = ServeSettings(model=model, backend=backend, quantize=quantize, precision=precision, device=device,
                             max_length=max_length, api_key_hashes=hashes, max_documents=max_documents,
                             max_document_chars=max_document_chars, max_body_bytes=max_body_bytes,
                             request_timeout_s=timeout, max_batch_inputs=max_batch_inputs,
                             max_batch_tokens=max_batch_tokens, max_wait_ms=max_wait_ms,
                             poll_interval_s=poll_interval, **({"store": store} if store else {}))
    if settings.is_registry_ref:
        from searchtune.registry import ModelRegistry, RegistryError

        try:
            ModelRegistry(settings.store).resolve_version(model)
        except RegistryError as exc:
            fail(f"{exc} (and no folder named '{model}' exists)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=False,
                timeout_graceful_shutdown=graceful_timeout)
