"""What every route shares: request limits, the model-name check, the time budget and the mapping of engine
errors to HTTP errors.

The budget (``--timeout``) counts from the moment the request reached the app, not from when its handler started,
and covers tokenization, queueing and inference: when it runs out the request ends with 504 and its inputs still
queued are dropped by the batcher.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TypeVar

from searchtune.serve.engine import Engine, LoadedModel, ModelNotReady
from searchtune.serve.errors import ApiError
from searchtune.serve.inference import InputTooLong, UnknownPrompt, UnsupportedKind
from searchtune.serve.settings import ServeSettings
from searchtune.serve.tokens import Direction, TokenizationError
from searchtune.serve.vectors import DimensionsRefused

T = TypeVar("T")

#: Set by the app's middleware when a request arrives (monotonic seconds).
REQUEST_START: ContextVar[float | None] = ContextVar("searchtune_request_start", default=None)


def add_cohere_versions(router, path: str, summary: str, tag: str, body_type: type, handler) -> None:
    """Cohere's ``/v1/...`` and ``/v2/...`` of one route: the same handler, told which version answered."""
    for version in ("1", "2"):
        def endpoint_for(v: str):
            async def endpoint(body):
                return await handler(body, v)

            endpoint.__annotations__ = {"body": body_type}
            endpoint.__name__ = f"cohere_{tag}_v{v}"
            return endpoint

        router.post(path.format(version=version), tags=[tag], summary=summary.format(version=version))(
            endpoint_for(version))


def direction(value: str | None) -> Direction:
    return "left" if (value or "right").lower() == "left" else "right"


class RouteContext:
    def __init__(self, engine: Engine, settings: ServeSettings):
        self.engine = engine
        self.settings = settings

    def check_limits(self, texts: list[str], what: str = "documents") -> None:
        s = self.settings
        if len(texts) > s.max_documents:
            raise ApiError(413, "TooManyDocuments", f"{len(texts)} {what} exceed max_documents={s.max_documents}",
                           limit="max_documents", max=s.max_documents, actual=len(texts))
        for i, text in enumerate(texts):
            if len(text) > s.max_document_chars:
                raise ApiError(413, "DocumentTooLong", f"{what}[{i}] has {len(text)} characters, over "
                               f"max_document_chars={s.max_document_chars}", limit="max_document_chars",
                               max=s.max_document_chars, actual=len(text), index=i)

    def check_model(self, name: str | None) -> None:
        """A ``model`` the server does not serve is 404 (it used to be ignored: a typo reranked with the wrong
        model silently). No name means "whatever is served"."""
        if name is None or name == "":
            return
        served = self.engine.served_names()
        if self.engine.current is not None and name not in served:
            raise ApiError(404, "ModelNotFound", f"model '{name}' is not served here; this server serves "
                           f"'{self.engine.current.name}' (send that name, or no model)", param="model")

    def model_id(self) -> str:
        return self.engine.current.name if self.engine.current else "loading"

    def remaining_s(self) -> float:
        start = REQUEST_START.get()
        elapsed = time.monotonic() - start if start is not None else 0.0
        return self.settings.request_timeout_s - elapsed

    async def run(self, work: Callable[[LoadedModel], Awaitable[T]], model: str | None = None) -> T:
        """Run ``work`` on the pinned current model within the request's budget, mapping errors to HTTP."""
        self.check_model(model)
        timeout = self.settings.request_timeout_s
        try:
            async with self.engine.pinned() as pinned:
                return await asyncio.wait_for(work(pinned), max(self.remaining_s(), 0.001))
        except asyncio.TimeoutError:
            raise ApiError(504, "Timeout", f"request took longer than request_timeout_s={timeout}",
                           limit="request_timeout_s", max=timeout) from None
        except ModelNotReady as exc:
            raise ApiError(503, "ModelNotReady", str(exc), headers={"Retry-After": "2"}) from None
        except UnsupportedKind as exc:
            raise ApiError(400, "UnsupportedModelKind", str(exc)) from None
        except InputTooLong as exc:
            raise ApiError(413, "InputTooLong", str(exc), limit="max_length", max=exc.limit, actual=exc.length,
                           index=exc.index) from None
        except (UnknownPrompt, DimensionsRefused, TokenizationError) as exc:
            raise ApiError(400, "InvalidParameter", str(exc)) from None
