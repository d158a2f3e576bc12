"""Eval's rerank scorer over HTTP (``POST {url}/v1/rerank``, e.g. ``searchtune serve``): the shared rerank client
(:mod:`searchtune.rerank_client`) behind the :class:`searchtune.scoring.Scorer` shape eval reranks with.

Reranking is idempotent, so refused connections, 429 and 5xx are retried with exponential backoff (the client's,
via tenacity); every attempt has a timeout. Scores come back in input order.
"""

from __future__ import annotations

from searchtune.rerank_client import RerankError, SyncRerankClient


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
        self.timeout = timeout
        #: the whole call's budget: every attempt may take ``timeout``, plus the backoff between them
        self.budget = timeout * (retries + 1) + backoff * (2 ** (retries + 1))
        self.batch_size = batch_size
        self._client = SyncRerankClient(retries=retries, backoff_s=backoff, headers=headers)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteReranker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def score(self, query: str, documents: list[str]) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(documents), self.batch_size):
            batch = documents[start:start + self.batch_size]
            try:
                scores.extend(self._client.rerank(self.endpoint, "cohere", self.model, query, batch,
                                                  timeout=self.budget, attempt_timeout=self.timeout))
            except RerankError as exc:
                raise RemoteRerankError(f"{self.endpoint}: {exc}") from None
        return scores

    def score_pairs(self, pairs: list[tuple[str, str]]) -> list[float]:
        return [self.score(q, [d])[0] for q, d in pairs]
