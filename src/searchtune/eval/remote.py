"""A small client for a Cohere-style rerank endpoint (``POST {url}/v1/rerank``), e.g. ``searchtune serve``.

Reranking is idempotent, so transport errors, 429 and 5xx are retried with exponential backoff; every request has a
timeout. The scorer returns one score per document in input order, mapping results back by ``index``.
"""

from __future__ import annotations

import logging
import time

import httpx

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}


class RemoteRerankError(RuntimeError):
    """The endpoint could not be reached or answered with something that is not a rerank response."""


class RemoteReranker:
    """Scores (query, documents) through HTTP; quacks like :class:`searchtune.scoring.Scorer` for reranking."""

    kind = "remote"

    def __init__(self, url: str, model: str | None = None, timeout: float = 60.0, retries: int = 3,
                 backoff: float = 0.5, headers: dict[str, str] | None = None, batch_size: int = 256):
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/rerank") else f"{base}/v1/rerank"
        self.name = url
        self.model = model
        self.retries = retries
        self.backoff = backoff
        self.batch_size = batch_size
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), headers=headers)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteReranker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def score(self, query: str, documents: list[str]) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(documents), self.batch_size):
            scores.extend(self._score_batch(query, documents[start:start + self.batch_size]))
        return scores

    def score_pairs(self, pairs: list[tuple[str, str]]) -> list[float]:
        return [self.score(q, [d])[0] for q, d in pairs]

    def _score_batch(self, query: str, documents: list[str]) -> list[float]:
        if not documents:
            return []
        body: dict = {"query": query, "documents": documents, "top_n": len(documents)}
        if self.model:
            body["model"] = self.model
        payload = self._post(body)
        results = payload.get("results") if isinstance(payload, dict) else payload
        if not isinstance(results, list):
            raise RemoteRerankError(f"{self.endpoint}: response has no 'results' list")
        scores: list[float | None] = [None] * len(documents)
        for item in results:
            try:
                scores[int(item["index"])] = float(item.get("relevance_score", item.get("score")))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise RemoteRerankError(f"{self.endpoint}: bad result item {item!r}") from exc
        missing = [i for i, s in enumerate(scores) if s is None]
        if missing:
            raise RemoteRerankError(f"{self.endpoint}: no score for documents {missing[:5]}")
        return scores  # type: ignore[return-value]

    def _post(self, body: dict):
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(self.endpoint, json=body)
            except httpx.TransportError as exc:
                last = exc
            else:
                if response.status_code not in RETRY_STATUS:
                    if response.status_code >= 400:
                        raise RemoteRerankError(f"{self.endpoint}: HTTP {response.status_code}: {response.text[:200]}")
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise RemoteRerankError(f"{self.endpoint}: response is not JSON") from exc
                last = RemoteRerankError(f"{self.endpoint}: HTTP {response.status_code}")
            if attempt < self.retries:
                delay = self.backoff * 2 ** attempt
                log.warning("rerank request failed (%s); retrying in %.1fs", last, delay)
                time.sleep(delay)
        raise RemoteRerankError(f"{self.endpoint}: giving up after {self.retries + 1} attempts: {last}")
