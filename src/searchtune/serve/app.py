"""The FastAPI application: routes, auth, limits, metrics, and the engine's lifecycle."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from searchtune import __version__
from searchtune.serve.engine import Engine
from searchtune.serve.errors import (ApiError, api_error_handler, error_response, http_error_handler,
                                    validation_error_handler)
from searchtune.serve.metrics import ServerMetrics
from searchtune.serve.routes import build_router
from searchtune.serve.observe import ObserveRequests
from searchtune.serve.security import BodySizeLimit, make_auth_dependency
from searchtune.serve.settings import ServeSettings

log = logging.getLogger(__name__)


def create_app(settings: ServeSettings) -> FastAPI:
    metrics = ServerMetrics()
    engine = Engine(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await engine.start()
        yield
        # uvicorn has already finished in-flight requests (graceful shutdown) when this runs.
        await engine.stop()

    app = FastAPI(title="searchtune inference server", version=__version__, lifespan=lifespan,
                  description="Reranking and embeddings behind the APIs search engines already call: Cohere, "
                              "DashScope, TEI/Hugging Face, Alibaba AI Search, OpenAI.")
    app.state.engine = engine
    app.state.metrics = metrics
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        # the exception text may quote the request: only its type leaves the server
        return error_response(request, 500, "InternalError", f"internal error ({type(exc).__name__}); see the "
                              "server log")

    @app.get("/health", tags=["status"], summary="Process is up")
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/ready", tags=["status"], summary="Model loaded and warmed")
    async def ready(request: Request) -> Response:
        if engine.ready:
            return JSONResponse({"status": "ready", "model": engine.current.describe()})
        return error_response(request, 503 if engine.error is None else 500, "ModelNotReady",
                              engine.error or "model is loading")

    @app.get("/metrics", tags=["status"], summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(build_router(engine, settings, make_auth_dependency(settings.api_key_hashes)))
    app.add_middleware(ObserveRequests, metrics=metrics,
                       fingerprint=lambda: engine.current.fingerprint if engine.current is not None else None)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
