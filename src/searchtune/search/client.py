"""One way to get a client for the cluster a command targets, with timeouts and retries that suit batch work."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from searchtune.config import es_url as default_es_url


def es_client(url: str | None = None, request_timeout: float = 60.0) -> Elasticsearch:
    """Client for ``url`` (default: ``SEARCHTUNE_ES_URL`` or the local node). Retries transient faults."""
    return Elasticsearch(url or default_es_url(), request_timeout=request_timeout, retry_on_timeout=True, max_retries=3)


def detect_product(url: str, timeout: float = 10.0) -> str:
    """``"opensearch"`` or ``"elasticsearch"``, from the root endpoint: Elasticsearch stamps every response with
    ``X-Elastic-Product`` (even errors: the ES test distribution answers ``GET /`` with 405), OpenSearch reports
    ``version.distribution: opensearch``. Callers pick the client library with it: elasticsearch-py refuses to talk
    to OpenSearch, and opensearch-py's API takes ``body=`` where elasticsearch-py 9 takes named parts."""
    import httpx

    try:
        response = httpx.get(url.rstrip("/") + "/", timeout=timeout)
    except httpx.HTTPError as exc:
        raise ConnectionError(f"cannot reach a search cluster at {url}: {exc}") from exc
    if response.headers.get("x-elastic-product", "").lower() == "elasticsearch":
        return "elasticsearch"
    try:
        info = response.json()
    except ValueError:
        info = {}
    if isinstance(info, dict) and info.get("version", {}).get("distribution") == "opensearch":
        return "opensearch"
    if response.status_code >= 400:
        raise ConnectionError(f"{url} answered {response.status_code} and names no product: {response.text[:200]}")
    return "elasticsearch"


def opensearch_client(url: str, request_timeout: float = 60.0):
    """opensearch-py client for ``url`` with the same timeout/retry policy as :func:`es_client`."""
    from opensearchpy import OpenSearch

    return OpenSearch(hosts=[url], timeout=request_timeout, retry_on_timeout=True, max_retries=3)


def search_client(url: str | None = None, request_timeout: float = 60.0):
    """The right client for whatever answers at ``url``: elasticsearch-py for Elasticsearch, opensearch-py for
    OpenSearch. :func:`searchtune.search.retrieval.bm25_search` accepts either."""
    url = url or default_es_url()
    if detect_product(url) == "opensearch":
        return opensearch_client(url, request_timeout)
    return es_client(url, request_timeout)
