"""HTTP routes of every API the server speaks, on one router behind the API-key dependency."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from searchtune.serve.engine import Engine
from searchtune.serve.routes.common import RouteContext
from searchtune.serve.routes.embed import add_embed_routes
from searchtune.serve.routes.rerank import add_rerank_routes
from searchtune.serve.routes.tei import add_tei_routes
from searchtune.serve.settings import ServeSettings


def build_router(engine: Engine, settings: ServeSettings, auth) -> APIRouter:
    router = APIRouter(dependencies=[Depends(auth)])
    ctx = RouteContext(engine, settings)
    add_rerank_routes(router, ctx)
    add_embed_routes(router, ctx)
    hf_rerank = next(r.endpoint for r in router.routes if getattr(r, "path", "") == "/rerank")
    add_tei_routes(router, ctx, hf_rerank)

    @router.get("/v1/models", tags=["status"], summary="The served model, its backend and precision")
    async def models() -> dict[str, Any]:
        data = [engine.current.describe()] if engine.current else []
        return {"object": "list", "data": data}

    return router
