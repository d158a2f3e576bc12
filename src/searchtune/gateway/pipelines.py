"""Search-pipeline definitions the gateway accepts, validated with pydantic and reduced to one :class:`RerankSpec`.

Two shapes are accepted verbatim, because users copy them from guides rather than write them:

* the vendor-guide shape ``{"description", "request_processors": [{"neural_rerank": {"model_id", "endpoint",
  "field", "top_k", "headers"}}]}`` (valid on no engine as written; treated as a response-side rerank), and
* OpenSearch's ``{"response_processors": [{"rerank": {"ml_opensearch": {"model_id"}, "context":
  {"document_fields": [...]}}}]}``.

The stored definition is always the one the user sent: header values such as ``Bearer $SEARCHTUNE_SECRET_BAILIAN`` are
resolved from the gateway's environment only when a request is made (:func:`resolve_headers`, allow-listed variables
only: secrets.py), and :func:`redact` hides every literal header value before a definition is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from searchtune.gateway import secrets
from searchtune.gateway.hybrid_spec import HybridSpec, parse_hybrid
from searchtune.gateway.secrets import REDACTED  # noqa: F401 - part of this module's interface
from searchtune.rerank_client import check_http_url

#: API dialects the rerank client speaks (see rerank_client.py).
ApiName = Literal["cohere", "cohere-v2", "dashscope", "tei", "alibaba", "hf"]



class PipelineError(ValueError):
    """A pipeline definition that cannot be used; the message names the offending field."""


class _Processor(BaseModel):
    # Common OpenSearch processor keys, accepted and ignored.
    model_config = ConfigDict(extra="forbid")
    tag: str | None = None
    description: str | None = None
    ignore_failure: bool | None = None


class _Tuning(BaseModel):
    """searchtune extensions, accepted inside either processor shape."""

    api: ApiName | None = Field(None, description="API dialect; inferred from the endpoint path when absent.")
    timeout_ms: float | None = Field(None, gt=0, description="Per-pipeline model timeout (gateway default otherwise).")
    query_text_path: str | None = Field(None, description="Dotted path into the request body holding the query text.")
    document_fields: list[str] | None = Field(None, min_length=1, description="Document fields to score.")
    bm25_weight: float = Field(0.0, ge=0.0, le=1.0, description="Fusion weight of the min-max normalised score of "
                               "the previous stage (BM25, or the hybrid fused score after a hybrid processor).")
    separator: str = Field(". ", description="Joins several document fields into one text.")


class NeuralRerank(_Processor, _Tuning):
    """The vendor guide's ``neural_rerank`` processor."""

    model_id: str | None = None
    endpoint: str
    field: str | list[str] | None = None
    top_k: int | None = Field(None, ge=1, le=10_000)
    headers: dict[str, str] = Field(default_factory=dict)

    _http_url = field_validator("endpoint")(check_http_url)


class MlOpenSearch(_Tuning):
    model_config = ConfigDict(extra="forbid")
    model_id: str
    endpoint: str | None = Field(None, description="searchtune extension: the model URL (else the gateway's model map).")
    headers: dict[str, str] = Field(default_factory=dict)


class RerankContext(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document_fields: list[str] = Field(min_length=1)


class OpenSearchRerank(_Processor):
    """OpenSearch's ``rerank`` response processor (the ``ml_opensearch`` flavour)."""

    ml_opensearch: MlOpenSearch
    context: RerankContext
    top_k: int | None = Field(None, ge=1, le=10_000, description="searchtune extension: rerank window.")


class PipelineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = None
    version: int | None = None
    request_processors: list[dict[str, Any]] = Field(default_factory=list)
    response_processors: list[dict[str, Any]] = Field(default_factory=list)
    phase_results_processors: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class RerankSpec:
    """What the search handler needs, whichever shape the pipeline came in."""

    model_id: str | None
    endpoint: str | None  # None: resolve model_id through the gateway's model map at search time
    api: str | None
    headers: dict[str, str] = field(default_factory=dict)  # unresolved, e.g. "Bearer $BAILIAN_API_KEY"
    top_k: int | None = None  # None: rerank exactly the hits the client asked for (OpenSearch semantics)
    fields: tuple[str, ...] = ()  # candidate document fields (may name no document field, see query_text.py)
    query_text_path: str | None = None
    bm25_weight: float = 0.0
    timeout_s: float | None = None
    separator: str = ". "
    location: str = ""  # where in the definition, e.g. "request_processors[0].neural_rerank", for error messages


@dataclass(frozen=True)
class Pipeline:
    name: str
    definition: dict[str, Any]  # verbatim, as stored
    rerank: RerankSpec | None
    hybrid: HybridSpec | None = None  # BM25 + kNN fused in the gateway, before the rerank step (hybrid_search.py)


_SUPPORTED = ("hybrid", "neural_rerank", "rerank")


def _location(stage: str, position: int, kind: str) -> str:
    return f"{stage}[{position}].{kind}"


def _format_validation(prefix: str, exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        parts.append(f"{prefix}{'.' + loc if loc else ''}: {error['msg']}")
    return "; ".join(parts)


def parse_pipeline(name: str, body: Any) -> Pipeline:
    """Validate a pipeline body (either accepted shape) and reduce it to its single rerank step.

    Raises :class:`PipelineError` naming the field at fault, e.g. ``request_processors[0].neural_rerank.top_k``.
    """
    from searchtune.rerank_client import infer_api  # local: keeps this module import-light

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}", name or ""):
        raise PipelineError(f"invalid pipeline name {name!r}: use letters, digits, '-', '_' or '.'")
    if not isinstance(body, dict):
        raise PipelineError(f"pipeline [{name}]: the body must be a JSON object")
    try:
        parsed = PipelineBody.model_validate(body)
    except ValidationError as exc:
        raise PipelineError(f"pipeline [{name}]: {_format_validation('', exc)}") from None
    if parsed.phase_results_processors:
        raise PipelineError(f"pipeline [{name}]: phase_results_processors are not supported by the searchtune gateway")

    specs: list[tuple[str, RerankSpec]] = []
    hybrid: HybridSpec | None = None
    for stage in ("request_processors", "response_processors"):
        for position, wrapper in enumerate(getattr(parsed, stage)):
            if len(wrapper) != 1:
                raise PipelineError(f"pipeline [{name}]: {stage}[{position}] must hold exactly one processor, "
                                    f"got {sorted(wrapper) or 'none'}")
            kind, config = next(iter(wrapper.items()))
            where = _location(stage, position, kind)
            if kind not in _SUPPORTED:
                raise PipelineError(f"pipeline [{name}]: {where}: processor [{kind}] is not supported by the searchtune "
                                    f"gateway (supported: {', '.join(_SUPPORTED)})")
            if kind == "hybrid":
                hybrid = _hybrid_step(name, stage, where, config, hybrid, specs)
                continue
            try:
                if kind == "neural_rerank":
                    proc = NeuralRerank.model_validate(config)
                    fields = proc.document_fields or ([proc.field] if isinstance(proc.field, str) else proc.field or [])
                    spec = RerankSpec(model_id=proc.model_id, endpoint=proc.endpoint, api=proc.api,
                                      headers=dict(proc.headers), top_k=proc.top_k, fields=tuple(fields),
                                      query_text_path=proc.query_text_path, bm25_weight=proc.bm25_weight,
                                      timeout_s=proc.timeout_ms / 1000 if proc.timeout_ms else None,
                                      separator=proc.separator)
                else:
                    proc = OpenSearchRerank.model_validate(config)
                    ml = proc.ml_opensearch
                    spec = RerankSpec(model_id=ml.model_id, endpoint=ml.endpoint, api=ml.api, headers=dict(ml.headers),
                                      top_k=proc.top_k, fields=tuple(ml.document_fields or proc.context.document_fields),
                                      query_text_path=ml.query_text_path, bm25_weight=ml.bm25_weight,
                                      timeout_s=ml.timeout_ms / 1000 if ml.timeout_ms else None,
                                      separator=ml.separator)
            except ValidationError as exc:
                raise PipelineError(f"pipeline [{name}]: {_format_validation(where, exc)}") from None
            if spec.endpoint and not spec.api:
                try:
                    infer_api(spec.endpoint)
                except ValueError as exc:
                    raise PipelineError(f"pipeline [{name}]: {where}.endpoint: {exc}") from None
            specs.append((where, replace(spec, location=where)))
    if not specs and hybrid is None:
        raise PipelineError(f"pipeline [{name}]: no processor (expected hybrid, neural_rerank or rerank)")
    if len(specs) > 1:
        raise PipelineError(f"pipeline [{name}]: only one rerank processor per pipeline, got {[w for w, _ in specs]}")
    return Pipeline(name=name, definition=body, rerank=specs[0][1] if specs else None, hybrid=hybrid)


def _hybrid_step(name: str, stage: str, where: str, config: Any, seen: HybridSpec | None, reranks: list) -> HybridSpec:
    """One ``hybrid`` request processor, before any rerank step (it produces the candidates the rerank scores)."""
    if stage != "request_processors":
        raise PipelineError(f"pipeline [{name}]: {where}: hybrid must be a request processor")
    if seen is not None or reranks:
        raise PipelineError(f"pipeline [{name}]: {where}: one hybrid processor per pipeline, before any rerank")
    try:
        return parse_hybrid(config)
    except ValidationError as exc:
        raise PipelineError(f"pipeline [{name}]: {_format_validation(where, exc)}") from None


def neural_rerank_pipeline(model_id: str, endpoint: str, top_k: int, bm25_weight: float | None = None,
                           headers: dict[str, str] | None = None,
                           description: str = "Neural rerank via a searchtune model") -> dict[str, Any]:
    """A pipeline definition (the body of ``PUT /_search/pipeline/NAME``) with one ``neural_rerank`` processor
    reading the query from ``query_text``: what the quickstart creates and prints, built in one place."""
    processor: dict[str, Any] = {"model_id": model_id, "endpoint": endpoint, "field": "query_text", "top_k": top_k}
    if headers:
        processor["headers"] = dict(headers)
    if bm25_weight is not None:
        processor["bm25_weight"] = bm25_weight
    definition = {"description": description, "request_processors": [{"neural_rerank": processor}]}
    parse_pipeline("definition", definition)  # built wrong here is a bug: fail loudly, not at the first search
    return definition


def resolve_headers(headers: dict[str, str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """Expand ``$VAR``/``${VAR}`` from the environment at call time, allow-listed variables only (secrets.py).

    A header left empty (or holding only an auth scheme such as ``Bearer``) is dropped, so a guide's
    ``Bearer $SEARCHTUNE_SECRET_KEY`` works against a local server that needs no key.
    """
    return secrets.resolve(headers, environ)


def redact(definition: dict[str, Any]) -> dict[str, Any]:
    """Copy of a definition fit to show: header values that are literals become ``<redacted>``; references are shown
    as written (they name a variable, not a secret)."""

    def walk(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            if key == "headers":
                return secrets.redact_headers(node)
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(definition)
