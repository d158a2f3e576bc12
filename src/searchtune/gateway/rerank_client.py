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

Every failure becomes a :class:`RerankError` with a short machine-readable ``reason`` (``timeout``,
``connect_error``, ``http_503``, ``bad_response``...), which the gateway reports in its fallback flag and metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

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


def check_http_url(value: str) -> str:
    """Pipeline validators: a model endpoint must be an http(s) URL with a host."""
    import re

    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


async def post_to_model(http: httpx.AsyncClient, url: str, body: dict, headers: dict[str, str],
                        timeout: float) -> httpx.Response:
    """One POST to a model endpoint; transport trouble and HTTP errors become RerankError reasons."""
    try:
        response = await http.post(url, json=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise RerankError("timeout", f"no answer from {url} within {timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise RerankError("connect_error", f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 400:
        raise RerankError(f"http_{response.status_code}", response.text[:300])
    return response


def json_payload(response: httpx.Response):
    try:
        return response.json()
    except ValueError as exc:
        raise RerankError("bad_response", f"not JSON: {response.text[:200]}") from exc


class RerankClient:
    """One pooled async HTTP client for every endpoint the gateway calls."""

    def __init__(self, max_connections: int = 64) -> None:
        self._http = httpx.AsyncClient(limits=httpx.Limits(max_connections=max_connections,
                                                           max_keepalive_connections=max_connections))

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared pool (the hybrid processor's query embeddings go through it too)."""
        return self._http

    async def rerank(self, endpoint: str, api: str | None, model: str | None, query: str, documents: Sequence[str],
                     headers: dict[str, str] | None = None, timeout: float = 1.0) -> list[float]:
        """Scores for ``documents`` in input order. Raises RerankError; never retries (the search is waiting)."""
        if not documents:
            return []
        api = api or infer_api(endpoint)
        body = build_request(api, model, query, documents)
        response = await post_to_model(self._http, request_url(endpoint, api), body, headers or {}, timeout)
        return parse_scores(json_payload(response), len(documents))
