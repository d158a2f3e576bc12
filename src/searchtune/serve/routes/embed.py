"""Embedding routes of the dialects that also rerank: OpenAI, Cohere v1/v2, DashScope and Alibaba AI Search.

Cohere's ``input_type`` and DashScope's ``text_type`` pick the model's prompt of that name (``search_query`` ->
``query``, ``search_document`` -> ``document``) when the model declares prompts, and change nothing for symmetric
models. OpenAI token-id input is run as ids of this model's tokenizer (refused with 400 when an id is outside it).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter

from searchtune.serve import inference
from searchtune.serve.embed_schemas import AlibabaEmbed, CohereEmbed, DashScopeEmbed, OpenAIEmbeddings
from searchtune.serve.routes.common import RouteContext, add_cohere_versions
from searchtune.serve.tokens import Direction
from searchtune.serve.vectors import encode_as, shape

COHERE_PROMPTS = {"search_query": "query", "search_document": "document", "classification": "classification",
                  "clustering": "clustering", "query": "query", "document": "document"}


@dataclass
class EmbedAsk:
    texts: list[str] | None = None
    token_ids: list[list[int]] | None = None
    prompt_name: str | None = None
    strict_prompt: bool = False
    truncate: bool = True
    direction: Direction = "right"
    normalize: bool = True
    dimensions: int | None = None


async def embed_vectors(ctx: RouteContext, ask: EmbedAsk, model: str | None = None) -> tuple[np.ndarray, int]:
    """Unit (or raw, ``normalize=False``) vectors, Matryoshka-truncated when asked, and the input token count."""
    if ask.texts is not None:
        ctx.check_limits(ask.texts, "inputs")
    elif ask.token_ids is not None:
        ctx.check_limits([""] * len(ask.token_ids), "inputs")

    async def work(m):
        prompt = inference.prompt_text(m, ask.prompt_name, ask.strict_prompt)
        out = await inference.embed(m, ctx.engine.metrics, ask.texts, ask.token_ids, prompt, ask.truncate,
                                    ask.direction)
        return shape(out.vectors, m.backend.card, ask.normalize, ask.dimensions), out.tokens

    return await ctx.run(work, model)


def _token_rows(value: Any) -> list[list[int]] | None:
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return value
    return None


def add_embed_routes(router: APIRouter, ctx: RouteContext) -> None:
    @router.post("/v1/embeddings", tags=["embeddings"], summary="OpenAI embeddings")
    async def openai_embeddings(body: OpenAIEmbeddings) -> dict[str, Any]:
        ids = _token_rows(body.input)
        texts = None if ids is not None else ([body.input] if isinstance(body.input, str) else list(body.input))
        vectors, tokens = await embed_vectors(ctx, EmbedAsk(texts=texts, token_ids=ids, dimensions=body.dimensions),
                                              body.model)
        data = encode_as(vectors, body.encoding_format)
        return {"object": "list", "model": body.model or ctx.model_id(),
                "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(data)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def cohere(body: CohereEmbed, version: str) -> dict[str, Any]:
        texts = body.texts or []
        ask = EmbedAsk(texts=texts, prompt_name=COHERE_PROMPTS.get(body.input_type or "", body.input_type),
                       truncate=body.truncate != "NONE", direction="left" if body.truncate == "START" else "right",
                       dimensions=body.output_dimension)
        vectors, tokens = await embed_vectors(ctx, ask, body.model)
        meta = {"api_version": {"version": version}, "billed_units": {"input_tokens": tokens}}
        common = {"id": str(uuid.uuid4()), "texts": texts, "meta": meta}
        if version == "1" and not body.embedding_types:
            return {**common, "response_type": "embeddings_floats", "embeddings": encode_as(vectors, "float")}
        kinds = body.embedding_types or ["float"]
        return {**common, "response_type": "embeddings_by_type",
                "embeddings": {k: encode_as(vectors, k) for k in dict.fromkeys(kinds)}}

    add_cohere_versions(router, "/v{version}/embed", "Cohere v{version} embed", "embeddings", CohereEmbed, cohere)

    @router.post("/api/v1/services/embeddings/text-embedding/text-embedding", tags=["embeddings"],
                 summary="DashScope (Bailian) text-embedding")
    async def dashscope(body: DashScopeEmbed) -> dict[str, Any]:
        texts = [body.input.texts] if isinstance(body.input.texts, str) else body.input.texts
        ask = EmbedAsk(texts=texts, prompt_name=body.parameters.text_type, dimensions=body.parameters.dimension)
        vectors, tokens = await embed_vectors(ctx, ask, body.model)
        rows = [{"text_index": i, "embedding": v} for i, v in enumerate(encode_as(vectors, "float"))]
        return {"output": {"embeddings": rows}, "usage": {"total_tokens": tokens}, "request_id": str(uuid.uuid4())}

    @router.post("/v3/openapi/workspaces/{workspace}/text-embedding/{service_id}", tags=["embeddings"],
                 summary="Alibaba Cloud AI Search text embedding")
    async def alibaba(workspace: str, service_id: str, body: AlibabaEmbed) -> dict[str, Any]:
        start = time.perf_counter()
        texts = [body.input] if isinstance(body.input, str) else body.input
        vectors, tokens = await embed_vectors(ctx, EmbedAsk(texts=texts, prompt_name=body.input_type))
        return {"request_id": str(uuid.uuid4()), "latency": round((time.perf_counter() - start) * 1000),
                "usage": {"token_count": tokens},
                "result": {"embeddings": [{"index": i, "embedding": v}
                                          for i, v in enumerate(encode_as(vectors, "float"))]}}
