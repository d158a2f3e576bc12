"""Async client for a rerank endpoint, speaking each API dialect our model server (and the vendors) answer.

The dialect is inferred from the endpoint path (:func:`infer_api`) or given explicitly by the pipeline's ``api``:

=============  =============================================  ==========================================
api            request body                                   scores read from
=============  =============================================  ==========================================
cohere         ``/v1/rerank`` ``{model, query, documents,     ``results[{index, relevance_score}]``
               top_n, return_documents}``
cohere-v2      ``/v2/rerank``, same body                      same
dashscope      ``/api/v1/services/rerank[...]`` ``{model,      ``output.results[{index, relevance_score}]``
               input:{query, documents}, parameters}``
tei            ``/rerank`` ``{query, texts, truncate}``         top-level ``[{index, score}]``
hf             ES ``hugging_face`` body ``{query, documents}``  top-level ``[{index, score|relevance_score}]``
alibaba        ``.../ranker/{service_id}`` ``{query, docs}``     ``result.scores[{index, score}]``
=============  =============================================  ==========================================

Used by the gateway (async, bounded by the per-search budget) and by eval (:class:`SyncRerankClient`, via
eval/remote.py). Every failure becomes a :class:`RerankError` with a short machine-readable ``reason`` (``timeout``,
``connect_error``, ``http_503``, ``bad_response``...), which the gateway reports in its fallback flag and metrics.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

API_NAMES = ("cohere", "cohere-v2", "dashscope", "tei", "hf", "alibaba")


class RerankError(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def infer_api(endpoint: str) -> str:
    """Dialect from the URL path; ValueError naming the accepted paths when it cannot be told."""
    path = urlsplit(endpoint).path.rstrip("/")
    if "/api/v1/services/rerank" in path:
        return "dashscope"
    if path.endswith("/v2/rerank"):
        return "cohere-v2"
    if path.endswith("/v1/rerank"):
        return "cohere"
    if "/ranker/" in path:
        return "alibaba"
    if path.endswith("/rerank"):
        return "tei"
    raise ValueError(f"cannot infer the API dialect from the path of {endpoint!r} (known: /v1/rerank, /v2/rerank, "
                     f"/api/v1/services/rerank..., /rerank, .../ranker/<id>); set \"api\" to one of {', '.join(API_NAMES)}")


def request_url(endpoint: str, api: str) -> str:
    """Where to POST. DashScope's documented route is ``/api/v1/services/rerank/text-rerank/text-rerank``; guides
    abbreviate it to ``/api/v1/services/rerank``, which is completed here so the guide's JSON works verbatim."""
    if api == "dashscope" and urlsplit(endpoint).path.rstrip("/").endswith("/api/v1/services/rerank"):
        return endpoint.rstrip("/") + "/text-rerank/text-rerank"
    return endpoint


def build_request(api: str, model: str | None, query: str, documents: Sequence[str]) -> dict[str, Any]:
    """The JSON body for ``api``; asks for a score for every document (top_n = len(documents))."""
    docs = list(documents)
    if api in ("cohere", "cohere-v2"):
        body: dict[str, Any] = {"query": query, "documents": docs, "top_n": len(docs), "return_documents": False}
        if model:
            body["model"] = model
        return body
    if api == "dashscope":
        body = {"input": {"query": query, "documents": docs},
                "parameters": {"top_n": len(docs), "return_documents": False}}
        if model:
            body["model"] = model
        return body
    if api == "tei":
        return {"query": query, "texts": docs, "truncate": True}
    if api == "hf":
        return {"query": query, "documents": docs}
    if api == "alibaba":
        return {"query": query, "docs": docs}
    raise ValueError(f"unknown api {api!r}; expected one of {', '.join(API_NAMES)}")


def _entries(payload: Any) -> list[Any] | None:
    if isinstance(payload, list):
        return payload
    if not isinstance(payload, dict):
        return None
    for path in (("results",), ("output", "results"), ("result", "scores"), ("data",)):
        node: Any = payload
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, list):
            return node
    return None


def parse_scores(payload: Any, count: int) -> list[float]:
    """Scores in input order from any dialect's response; RerankError('bad_response') unless all ``count`` came."""
    entries = _entries(payload)
    if entries is None:
        raise RerankError("bad_response", f"no result list in response: {str(payload)[:200]}")
    scores: list[float | None] = [None] * count
    for entry in entries:
        if not isinstance(entry, dict):
            raise RerankError("bad_response", f"result entry is not an object: {entry!r}")
        index = entry.get("index")
        score = entry.get("relevance_score", entry.get("score"))
        if not isinstance(index, int) or not 0 <= index < count or not isinstance(score, (int, float)):
            raise RerankError("bad_response", f"bad result entry {entry!r}")
        scores[index] = float(score)
    missing = [i for i, s in enumerate(scores) if s is None]
    if missing:
        raise RerankError("bad_response", f"{len(missing)} of {count} documents got no score")
    return [float(s) for s in scores]  # type: ignore[arg-type]


def _retryable(exc: BaseException) -> bool:
    """Worth another attempt: refused/reset connections, 429 and 5xx. Timeouts are not (the budget is spent) and
    neither are 4xx or bad answers (the same request gets the same refusal)."""
    if not isinstance(exc, RerankError):
        return False
    return exc.reason in ("connect_error", "http_429") or exc.reason.startswith("http_5")


def check_http_url(value: str) -> str:
    """Pipeline validators: a model endpoint must be an http(s) URL with a host."""
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


async def post_to_model(http: httpx.AsyncClient, url: str, body: dict, headers: dict[str, str],
                        timeout: float) -> httpx.Response:
    """One POST to a model endpoint (rerank or embed); transport trouble and HTTP errors become RerankError reasons."""
    try:
        response = await http.post(url, json=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise RerankError("timeout", f"no answer from {url} within {timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise RerankError("connect_error", f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 400:
        raise RerankError(f"http_{response.status_code}", response.text[:300])
    return response


def json_payload(response: httpx.Response) -> Any:
    """The answer's JSON, or RerankError("bad_response")."""
    try:
        return response.json()
    except ValueError as exc:
        raise RerankError("bad_response", f"not JSON: {response.text[:200]}") from exc


class RerankClient:
    """The one rerank client (async core): pooled HTTP, every dialect, retries with exponential backoff (tenacity)
    on 429/5xx/refused connections, all inside the call's ``timeout``. The gateway uses it as is, with the per-search
    budget as ``timeout``; eval uses :class:`SyncRerankClient`."""

    def __init__(self, max_connections: int = 64, retries: int = 2, backoff_s: float = 0.05,
                 headers: dict[str, str] | None = None) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self._http = httpx.AsyncClient(limits=httpx.Limits(max_connections=max_connections,
                                                           max_keepalive_connections=max_connections),
                                       headers=headers)

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared pool (the hybrid processor's query embeddings go through it too)."""
        return self._http

    async def rerank(self, endpoint: str, api: str | None, model: str | None, query: str, documents: Sequence[str],
                     headers: dict[str, str] | None = None, timeout: float = 1.0,
                     attempt_timeout: float | None = None) -> list[float]:
        """Scores for ``documents`` in input order, or RerankError. ``timeout`` bounds the whole call, retries and
        backoff included: a retry that would end past it is not made (the search is waiting); ``attempt_timeout``
        (default: what is left of ``timeout``) bounds each attempt."""
        if not documents:
            return []
        api = api or infer_api(endpoint)
        body = build_request(api, model, query, documents)
        url = request_url(endpoint, api)
        deadline = time.monotonic() + timeout

        def past_budget(state: RetryCallState) -> bool:
            return time.monotonic() + (state.upcoming_sleep or 0.0) >= deadline

        retrying = AsyncRetrying(retry=retry_if_exception(_retryable), reraise=True,
                                 stop=stop_after_attempt(self.retries + 1) | past_budget,
                                 wait=wait_exponential(multiplier=self.backoff_s, max=max(self.backoff_s, 8.0)))
        async for attempt in retrying:
            with attempt:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RerankError("timeout", f"no answer from {endpoint} within {timeout:g}s")
                limit = min(attempt_timeout or remaining, remaining)
                return await self._attempt(url, endpoint, body, headers, limit, len(documents))
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _attempt(self, url: str, endpoint: str, body: dict[str, Any], headers: dict[str, str] | None,
                       timeout: float, count: int) -> list[float]:
        response = await post_to_model(self._http, url, body, headers or {}, timeout)
        payload = json_payload(response)
        return parse_scores(payload, count)


class SyncRerankClient:
    """The same client for synchronous callers (eval, scripts): one private event loop runs the async core."""

    def __init__(self, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = self._loop.run_until_complete(self._make(options))

    @staticmethod
    async def _make(options: dict[str, Any]) -> RerankClient:
        return RerankClient(**options)

    def rerank(self, endpoint: str, api: str | None, model: str | None, query: str, documents: Sequence[str],
               headers: dict[str, str] | None = None, timeout: float = 60.0,
               attempt_timeout: float | None = None) -> list[float]:
        return self._loop.run_until_complete(self._client.rerank(endpoint, api, model, query, documents, headers,
                                                                 timeout, attempt_timeout))

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.aclose())
            self._loop.close()
