"""HTTP routes: each API shape is a thin adapter from its request body to :class:`Engine` and back.

Every rerank route returns a score for every document unless the caller set ``top_n`` (Elasticsearch maps scores
back by index and fails when some are missing), sorted by score as each API documents.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, Response

from searchtune.serve.engine import Engine, ModelNotReady, Scored, UnsupportedKind
from searchtune.serve.errors import ApiError
from searchtune.serve.schemas import (AlibabaEmbed, AlibabaRerank, CohereRerank, DashScopeRerank, HfRerank,
                                      OpenAIEmbeddings, TeiEmbed, doc_texts)
from searchtune.serve.settings import ServeSettings

T = TypeVar("T")


def build_router(engine: Engine, settings: ServeSettings, auth) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])

    def check_limits(texts: list[str], what: str = "documents") -> None:
        if len(texts) > settings.max_documents:
            raise ApiError(413, "TooManyDocuments",
                           f"{len(texts)} {what} exceed max_documents={settings.max_documents}",
                           limit="max_documents", max=settings.max_documents, actual=len(texts))
        for i, text in enumerate(texts):
            if len(text) > settings.max_document_chars:
                raise ApiError(413, "DocumentTooLong",
                               f"{what}[{i}] has {len(text)} characters, over max_document_chars="
                               f"{settings.max_document_chars}", limit="max_document_chars",
                               max=settings.max_document_chars, actual=len(text), index=i)

    async def guarded(call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, "Timeout", f"request took longer than request_timeout_s={settings.request_timeout_s}",
                           limit="request_timeout_s", max=settings.request_timeout_s) from None
        except ModelNotReady as exc:
            raise ApiError(503, "ModelNotReady", str(exc), headers={"Retry-After": "2"}) from None
        except UnsupportedKind as exc:
            raise ApiError(400, "UnsupportedModelKind", str(exc)) from None

    async def rerank(query: str, texts: list[str]) -> Scored:
        check_limits(texts + [query])
        return await guarded(engine.rerank(query, texts))

    def ranked(scored: Scored, top_n: int | None) -> list[tuple[int, float]]:
        order = sorted(range(len(scored.scores)), key=lambda i: scored.scores[i], reverse=True)
        if top_n:
            order = order[:top_n]
        return [(i, scored.scores[i]) for i in order]

    def model_id() -> str:
        return engine.current.name if engine.current else "loading"

    # ---------------------------------------------------------------- rerank
    async def cohere(body: CohereRerank, version: str) -> dict[str, Any]:
        texts = doc_texts(body.documents)
        scored = await rerank(body.query, texts)
        results = []
        for i, s in ranked(scored, body.top_n):
            row: dict[str, Any] = {"index": i, "relevance_score": s}
            if body.return_documents:
                row["document"] = {"text": texts[i]}
            results.append(row)
        return {"id": str(uuid.uuid4()), "results": results,
                "meta": {"api_version": {"version": version}, "billed_units": {"search_units": 1},
                         "tokens": {"input_tokens": scored.tokens, "output_tokens": 0}}}

    @router.post("/v1/rerank", tags=["rerank"], summary="Cohere v1 rerank")
    async def cohere_v1(body: CohereRerank) -> dict[str, Any]:
        return await cohere(body, "1")

    @router.post("/v2/rerank", tags=["rerank"], summary="Cohere v2 rerank")
    async def cohere_v2(body: CohereRerank) -> dict[str, Any]:
        return await cohere(body, "2")

    @router.post("/api/v1/services/rerank/text-rerank/text-rerank", tags=["rerank"],
                 summary="DashScope (Bailian) text-rerank")
    async def dashscope(body: DashScopeRerank) -> dict[str, Any]:
        texts = doc_texts(body.input.documents)
        scored = await rerank(body.input.query, texts)
        results = []
        for i, s in ranked(scored, body.parameters.top_n):
            row: dict[str, Any] = {"index": i, "relevance_score": s}
            if body.parameters.return_documents:
                row["document"] = {"text": texts[i]}
            results.append(row)
        return {"output": {"results": results}, "usage": {"total_tokens": scored.tokens},
                "request_id": str(uuid.uuid4())}

    @router.post("/rerank", tags=["rerank"], summary="TEI / Elasticsearch hugging_face rerank")
    async def hf_rerank(body: HfRerank) -> list[dict[str, Any]]:
        """A top-level array of ``{index, score}`` only (Elasticsearch rejects any other key), plus ``text`` when
        the caller asked for it with ``return_text``/``return_documents``."""
        texts = body.items
        scored = await rerank(body.query, texts)
        with_text = body.return_text or body.return_documents
        return [{"index": i, "score": s, **({"text": texts[i]} if with_text else {})}
                for i, s in ranked(scored, body.top_n)]

    @router.post("/v3/openapi/workspaces/{workspace}/ranker/{service_id}", tags=["rerank"],
                 summary="Alibaba Cloud AI Search ranker (Elasticsearch alibabacloud-ai-search)")
    async def alibaba_rerank(workspace: str, service_id: str, body: AlibabaRerank) -> dict[str, Any]:
        start = time.perf_counter()
        scored = await rerank(body.query, body.docs)
        return {"request_id": str(uuid.uuid4()), "latency": round((time.perf_counter() - start) * 1000),
                "usage": {"doc_count": len(body.docs)},
                "result": {"scores": [{"index": i, "score": s} for i, s in ranked(scored, body.top_n)]}}

    # ---------------------------------------------------------------- embeddings
    async def embed(texts: list[str], response: Response) -> tuple[list[list[float]], int]:
        """Embeds and names the weights in ``x-searchtune-model-fingerprint``: the gateway checks it against the
        fingerprint an index recorded for its vectors before it trusts a kNN search."""
        check_limits(texts, "inputs")
        result = await guarded(engine.embed(texts))
        if engine.current and engine.current.fingerprint:
            response.headers["x-searchtune-model-fingerprint"] = engine.current.fingerprint
        return result

    @router.post("/v1/embeddings", tags=["embeddings"], summary="OpenAI embeddings")
    async def openai_embeddings(body: OpenAIEmbeddings, response: Response) -> dict[str, Any]:
        texts = [body.input] if isinstance(body.input, str) else body.input
        vectors, tokens = await embed(texts, response)
        data = []
        for i, v in enumerate(vectors):
            emb: Any = v if body.encoding_format == "float" else \
                base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        return {"object": "list", "data": data, "model": body.model or model_id(),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    @router.post("/embed", tags=["embeddings"], summary="TEI embed (also Elasticsearch hugging_face embeddings)")
    async def tei_embed(body: TeiEmbed, response: Response) -> list[list[float]]:
        texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
        vectors, _ = await embed(texts, response)
        return vectors  # unit length already (what normalize=true asks for)

    @router.post("/v3/openapi/workspaces/{workspace}/text-embedding/{service_id}", tags=["embeddings"],
                 summary="Alibaba Cloud AI Search text embedding")
    async def alibaba_embed(workspace: str, service_id: str, body: AlibabaEmbed, response: Response) -> dict[str, Any]:
        start = time.perf_counter()
        texts = [body.input] if isinstance(body.input, str) else body.input
        vectors, tokens = await embed(texts, response)
        return {"request_id": str(uuid.uuid4()), "latency": round((time.perf_counter() - start) * 1000),
                "usage": {"token_count": tokens},
                "result": {"embeddings": [{"index": i, "embedding": v} for i, v in enumerate(vectors)]}}

    @router.get("/v1/models", tags=["status"], summary="The served model, its backend and precision")
    async def models() -> dict[str, Any]:
        data = [engine.current.describe()] if engine.current else []
        return {"object": "list", "data": data}

    return router
