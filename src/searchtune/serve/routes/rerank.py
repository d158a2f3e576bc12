"""Rerank routes: each API shape is a thin adapter from its request body to :mod:`searchtune.serve.inference`.

Every route returns a score for every document unless the caller set ``top_n`` (Elasticsearch maps scores back by
index and fails when some are missing), sorted by score as each API documents. Cohere and DashScope scores are in
0..1 (see :mod:`searchtune.serve.vectors` for the mapping); TEI's are sigmoid scores unless ``raw_scores``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter

from searchtune.serve import inference
from searchtune.serve.inference import Scored
from searchtune.serve.routes.common import RouteContext, add_cohere_versions, direction
from searchtune.serve.schemas import AlibabaRerank, CohereRerank, DashScopeRerank, HfRerank, doc_texts
from searchtune.serve.vectors import relevance_0_1, tei_scores


def ranked(scores: list[float], top_n: int | None) -> list[tuple[int, float]]:
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
    return [(i, scores[i]) for i in (order[:top_n] if top_n else order)]


def add_rerank_routes(router: APIRouter, ctx: RouteContext) -> None:
    metrics = ctx.engine.metrics

    async def rerank(query: str, texts: list[str], model: str | None = None, truncate: bool = True,
                     side: str | None = None) -> tuple[Scored, str]:
        ctx.check_limits(texts + [query])

        async def work(m):
            return await inference.rerank(m, metrics, query, texts, truncate, direction(side)), m.kind

        return await ctx.run(work, model)

    async def cohere(body: CohereRerank, version: str) -> dict[str, Any]:
        texts = body.texts()
        scored, kind = await rerank(body.query, texts, body.model)
        results = []
        for i, s in ranked(relevance_0_1(kind, scored.scores), body.top_n):
            row: dict[str, Any] = {"index": i, "relevance_score": s}
            if body.return_documents:
                doc = body.documents[i]  # an object comes back whole, with the text that was scored
                row["document"] = {"text": texts[i], **doc} if isinstance(doc, dict) else {"text": doc}
            results.append(row)
        return {"id": str(uuid.uuid4()), "results": results,
                "meta": {"api_version": {"version": version}, "billed_units": {"search_units": 1},
                         "tokens": {"input_tokens": scored.tokens, "output_tokens": 0}}}

    add_cohere_versions(router, "/v{version}/rerank", "Cohere v{version} rerank", "rerank", CohereRerank, cohere)

    @router.post("/api/v1/services/rerank/text-rerank/text-rerank", tags=["rerank"],
                 summary="DashScope (Bailian) text-rerank")
    async def dashscope(body: DashScopeRerank) -> dict[str, Any]:
        texts = doc_texts(body.input.documents)
        scored, kind = await rerank(body.input.query, texts, body.model)
        results = []
        for i, s in ranked(relevance_0_1(kind, scored.scores), body.parameters.top_n):
            row: dict[str, Any] = {"index": i, "relevance_score": s}
            if body.parameters.return_documents:
                row["document"] = {"text": texts[i]}
            results.append(row)
        return {"output": {"results": results}, "usage": {"total_tokens": scored.tokens},
                "request_id": str(uuid.uuid4())}

    @router.post("/rerank", tags=["rerank"], summary="TEI / Elasticsearch hugging_face rerank")
    async def hf_rerank(body: HfRerank) -> list[dict[str, Any]]:
        """A top-level array of ``{index, score}`` only (Elasticsearch rejects any other key), plus ``text`` when
        the caller asked for it with ``return_text``/``return_documents``. ``truncate: false`` over the model's
        max length is 413, as in TEI."""
        texts = body.items
        scored, kind = await rerank(body.query, texts, truncate=body.truncate is not False,
                                    side=body.truncation_direction)
        with_text = body.return_text or body.return_documents
        return [{"index": i, "score": s, **({"text": texts[i]} if with_text else {})}
                for i, s in ranked(tei_scores(kind, scored.scores, body.raw_scores), body.top_n)]

    @router.post("/v3/openapi/workspaces/{workspace}/ranker/{service_id}", tags=["rerank"],
                 summary="Alibaba Cloud AI Search ranker (Elasticsearch alibabacloud-ai-search)")
    async def alibaba_rerank(workspace: str, service_id: str, body: AlibabaRerank) -> dict[str, Any]:
        start = time.perf_counter()
        scored, kind = await rerank(body.query, body.docs)
        scores = tei_scores(kind, scored.scores, raw_scores=False)
        return {"request_id": str(uuid.uuid4()), "latency": round((time.perf_counter() - start) * 1000),
                "usage": {"doc_count": len(body.docs)},
                "result": {"scores": [{"index": i, "score": s} for i, s in ranked(scores, body.top_n)]}}
