"""Everything a server instance is configured with (filled by ``searchtune serve`` options and env vars)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from searchtune.config import store_uri


@dataclass
class ServeSettings:
    #: A model folder, or a registry reference NAME@ALIAS / NAME@VERSION / NAME (latest).
    model: str
    store: str = field(default_factory=store_uri)
    backend: str = "auto"
    precision: str = "auto"
    quantize: str = "auto"
    device: str | None = None
    max_length: int = 256  # what training and eval use, so served scores match eval's
    #: sha256 hex digests of accepted bearer keys; empty = no authentication.
    api_key_hashes: list[str] = field(default_factory=list)
    max_documents: int = 1000
    max_document_chars: int = 100_000
    max_body_bytes: int = 10 * 1024 * 1024
    request_timeout_s: float = 30.0
    max_batch_inputs: int = 64
    max_batch_tokens: int = 16384
    max_wait_ms: float = 2.0
    #: Seconds between registry checks for a moved alias (0 = never; only for registry references).
    poll_interval_s: float = 5.0
    #: Extra names a request's ``model`` field may use besides the served model's own (others are 404);
    #: ``SEARCHTUNE_SERVE_MODEL_NAMES=a,b`` (e.g. the model_id a search pipeline sends).
    model_names: list[str] = field(default_factory=lambda: _env_list("SEARCHTUNE_SERVE_MODEL_NAMES"))

    @property
    def is_registry_ref(self) -> bool:
        return not Path(self.model).expanduser().exists()


def _env_list(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]
