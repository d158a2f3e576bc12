"""The ``hybrid`` request processor of a gateway pipeline, validated with pydantic.

::

    {"request_processors": [
       {"hybrid": {"model_id": "custom-embed-v1", "endpoint": "http://127.0.0.1:8080/v1/embeddings",
                   "k": 100, "num_candidates": 200, "fusion": {"method": "linear", "weight": 0.55},
                   "timeout_ms": 300, "headers": {"Authorization": "Bearer $EMBED_KEY"}}},
       {"neural_rerank": {...}}]}          # optional: reranks the fused top-k

``vector_field`` defaults to the field the index metadata names; the endpoint's dialect (OpenAI
``/v1/embeddings`` or TEI ``/embed``) is inferred from its path unless ``api`` says it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from searchtune.rerank_client import check_http_url

from searchtune.vectors.fusion import DEFAULT_RANK_CONSTANT, DEFAULT_WEIGHT, Fusion

EmbedApi = Literal["openai", "tei"]


class FusionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["linear", "rrf"] = "linear"
    weight: float = Field(DEFAULT_WEIGHT, ge=0.0, le=1.0, description="kNN weight of min-max linear fusion.")
    rank_constant: int = Field(DEFAULT_RANK_CONSTANT, ge=1, description="RRF rank constant.")


class HybridBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: str | None = None
    description: str | None = None
    model_id: str | None = None
    endpoint: str
    api: EmbedApi | None = None
    vector_field: str | None = None
    k: int = Field(100, ge=1, le=10_000)
    num_candidates: int | None = Field(None, ge=1, le=10_000)
    fusion: FusionBody = Field(default_factory=FusionBody)
    timeout_ms: float | None = Field(None, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)
    query_text_path: str | None = None

    _http_url = field_validator("endpoint")(check_http_url)

    @model_validator(mode="after")
    def _candidates(self) -> "HybridBody":
        if self.num_candidates is not None and self.num_candidates < self.k:
            raise ValueError(f"num_candidates ({self.num_candidates}) must be >= k ({self.k})")
        if self.api is None:
            infer_embed_api(self.endpoint)
        return self


@dataclass(frozen=True)
class HybridSpec:
    model_id: str | None
    endpoint: str
    api: str
    vector_field: str | None
    k: int
    num_candidates: int
    fusion: Fusion
    timeout_s: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query_text_path: str | None = None


def infer_embed_api(endpoint: str) -> str:
    """``tei`` for a path ending in ``/embed``, ``openai`` for ``/embeddings`` or a bare server URL."""
    path = re.sub(r"^https?://[^/]+", "", endpoint).rstrip("/")
    if path.endswith("/embed"):
        return "tei"
    if path.endswith("/embeddings") or path in ("", "/v1"):
        return "openai"
    raise ValueError(f"cannot infer the embedding API from {endpoint!r} (known: /v1/embeddings, /embed); "
                     "set \"api\" to openai or tei")


def parse_hybrid(config: object) -> HybridSpec:
    """Raises pydantic's ValidationError (the pipeline parser turns it into a 400 naming the field)."""
    body = HybridBody.model_validate(config)
    api = body.api or infer_embed_api(body.endpoint)
    endpoint = body.endpoint.rstrip("/")
    if api == "openai" and not endpoint.endswith("/embeddings"):
        endpoint = endpoint.removesuffix("/v1") + "/v1/embeddings"
    fusion = Fusion(body.fusion.method, weight=body.fusion.weight, rank_constant=body.fusion.rank_constant)
    return HybridSpec(model_id=body.model_id, endpoint=endpoint, api=api, vector_field=body.vector_field, k=body.k,
                      num_candidates=body.num_candidates or max(2 * body.k, 100), fusion=fusion,
                      timeout_s=body.timeout_ms / 1000 if body.timeout_ms else None, headers=dict(body.headers),
                      query_text_path=body.query_text_path)
