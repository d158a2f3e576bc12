"""One way to get a client for the cluster a command targets, with timeouts and retries that suit batch work."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from searchtune.config import es_url as default_es_url


def es_client(url: str | None = None, request_timeout: float = 60.0) -> Elasticsearch:
    """Client for ``url`` (default: ``SEARCHTUNE_ES_URL`` or the local node). Retries transient faults."""
    return Elasticsearch(url or default_es_url(), request_timeout=request_timeout, retry_on_timeout=True, max_retries=3)
