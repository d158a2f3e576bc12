"""Text Embeddings Inference (TEI) routes besides ``/rerank``: ``/embed``, ``/embed_all``, ``/similarity``,
``/predict``, ``GET /info``, and ``POST /``, which dispatches by model kind as TEI does (so huggingface_hub's
``InferenceClient(model=<server root>)`` works: ``feature_extraction`` and ``sentence_similarity`` on an embedding
model, ``text_classification`` on a cross-encoder).

``POST /`` with a single text on a cross-encoder answers ``[[{label, score}]]`` (one list per input, the shape
huggingface_hub parses); ``/predict`` answers TEI's flat ``[{label, score}]`` for a single input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Body
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from searchtune import __version__
from searchtune.serve import inference
from searchtune.serve.embed_schemas import TeiEmbed, TeiPredict, TeiSimilarity
from searchtune.serve.errors import ApiError
from searchtune.serve.routes.common import RouteContext, direction
from searchtune.serve.routes.embed import EmbedAsk, embed_vectors
from searchtune.serve.schemas import HfRerank
from searchtune.serve.vectors import encode_as, sigmoid


def _validate(model: type[BaseModel], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


def _predict_inputs(inputs: Any) -> tuple[list[str | tuple[str, str]], bool]:
    """TEI's untagged input: a text, a pair ``[a, b]``, or a batch of texts / ``[a]`` / ``[a, b]``."""
    if isinstance(inputs, str):
        return [inputs], True
    if len(inputs) == 2 and all(isinstance(x, str) for x in inputs):
        return [(inputs[0], inputs[1])], True
    batch: list[str | tuple[str, str]] = []
    for i, item in enumerate(inputs):
        if isinstance(item, str):
            batch.append(item)
        elif len(item) == 1:
            batch.append(item[0])
        elif len(item) == 2:
            batch.append((item[0], item[1]))
        else:
            raise ApiError(422, "InvalidParameter", f"inputs[{i}] must be a text or a pair of texts", param="inputs")
    return batch, False


def _label_scores(logits: np.ndarray, labels: dict[int, str], function: str | None, raw: bool) -> list[list[dict]]:
    function = "none" if raw else (function or ("sigmoid" if logits.shape[1] == 1 else "softmax"))
    rows = []
    for row in logits:
        if function == "sigmoid":
            scores = sigmoid([float(x) for x in row])
        elif function == "softmax":
            e = np.exp(row - row.max())
            scores = (e / e.sum()).tolist()
        else:
            scores = [float(x) for x in row]
        entries = [{"label": labels.get(k, f"LABEL_{k}"), "score": s} for k, s in enumerate(scores)]
        rows.append(sorted(entries, key=lambda d: d["score"], reverse=True))
    return rows


def add_tei_routes(router: APIRouter, ctx: RouteContext, rerank_route) -> None:
    metrics = ctx.engine.metrics

    @router.post("/embed", tags=["embeddings"], summary="TEI embed (also Elasticsearch hugging_face embeddings)")
    async def embed(body: TeiEmbed) -> list[list[float]]:
        texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
        ask = EmbedAsk(texts=texts, prompt_name=body.prompt_name, strict_prompt=True,
                       truncate=body.truncate is not False, direction=direction(body.truncation_direction),
                       normalize=body.normalize, dimensions=body.dimensions)
        vectors, _ = await embed_vectors(ctx, ask)
        return encode_as(vectors, "float")

    @router.post("/embed_all", tags=["embeddings"], summary="TEI per-token embeddings")
    async def embed_all(body: TeiEmbed) -> list[list[list[float]]]:
        texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
        ctx.check_limits(texts, "inputs")
        rows = await ctx.run(lambda m: inference.token_vectors(m, metrics, texts, body.truncate is not False))
        return [np.asarray(r, dtype=np.float32).tolist() for r in rows]

    @router.post("/similarity", tags=["embeddings"], summary="TEI sentence similarity (cosine)")
    async def similarity(body: TeiSimilarity) -> list[float]:
        texts = [body.inputs.source_sentence, *body.inputs.sentences]
        ask = EmbedAsk(texts=texts, prompt_name=body.prompt_name, strict_prompt=True,
                       truncate=body.truncate is not False, direction=direction(body.truncation_direction))
        vectors, _ = await embed_vectors(ctx, ask)
        return (vectors[1:] @ vectors[0]).tolist() if len(vectors) > 1 else []

    async def classify(body: TeiPredict) -> tuple[list[list[dict]], bool]:
        items, single = _predict_inputs(body.inputs)
        ctx.check_limits([x if isinstance(x, str) else x[0] + x[1] for x in items], "inputs")
        logits, _ = await ctx.run(lambda m: inference.classify(m, metrics, items, body.truncate is not False))
        rows = _label_scores(logits, ctx.engine.current.backend.card.labels, body.parameters.function_to_apply,
                             body.raw_scores)
        if body.parameters.top_k:
            rows = [r[:body.parameters.top_k] for r in rows]
        return rows, single

    @router.post("/predict", tags=["classification"], summary="TEI predict (cross-encoder logits as labels)")
    async def predict(body: TeiPredict) -> list:
        rows, single = await classify(body)
        return rows[0] if single else rows

    @router.post("/", tags=["tei"], summary="TEI root: embed / similarity / predict / rerank by model kind")
    async def root(body: Any = Body(...)) -> Any:
        if not isinstance(body, dict):
            raise ApiError(422, "InvalidParameter", "the body must be a JSON object")
        kind = ctx.engine.current.kind if ctx.engine.current else None
        if kind == "cross-encoder":
            if "query" in body:
                return await rerank_route(_validate(HfRerank, body))
            rows, _ = await classify(_validate(TeiPredict, body))
            return rows
        if isinstance(body.get("inputs"), dict):
            return await similarity(_validate(TeiSimilarity, body))
        return await embed(_validate(TeiEmbed, body))

    @router.get("/info", tags=["status"], summary="TEI model info")
    async def info() -> dict[str, Any]:
        current = ctx.engine.current
        if current is None:
            raise ApiError(503, "ModelNotReady", ctx.engine.error or "model is loading", headers={"Retry-After": "2"})
        backend, s = current.backend, ctx.settings
        if current.kind == "cross-encoder":
            labels = backend.card.labels
            model_type = {"reranker": {"id2label": {str(k): v for k, v in labels.items()},
                                       "label2id": {v: k for k, v in labels.items()}}}
        else:
            model_type = {"embedding": {"pooling": "model"}}
        return {"model_id": current.name, "model_sha": None, "model_dtype": backend.precision,
                "model_type": model_type, "max_concurrent_requests": 512, "max_input_length": backend.max_length,
                "max_batch_tokens": s.max_batch_tokens, "max_batch_requests": s.max_batch_inputs,
                "max_client_batch_size": s.max_documents, "auto_truncate": True, "tokenization_workers": 1,
                "version": __version__, "backend": backend.backend}
