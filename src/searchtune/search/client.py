"""One way to get a client for the cluster a command targets, with timeouts and retries that suit batch work.

Every command that takes ``--es-url`` talks to Elasticsearch or OpenSearch: :func:`search_client` asks the cluster
what it is and hands back elasticsearch-py or opensearch-py accordingly (elasticsearch-py 9 sends
``compatible-with=9`` media types that OpenSearch answers with 406, and refuses servers that are not Elasticsearch).
The rest of the code calls the API both clients share: keyword arguments plus ``body=`` for request bodies.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from opensearchpy.exceptions import OpenSearchException

from searchtune.config import es_url as default_es_url

#: What a cluster call may raise, whichever client made it (``ConnectionError``: :func:`detect_product`).
CLUSTER_ERRORS: tuple[type[BaseException], ...] = (ApiError, TransportError, OpenSearchException, ConnectionError)


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
    OpenSearch. Raises ``ConnectionError`` (a clear message) when nothing answers there."""
    url = url or default_es_url()
    if detect_product(url) == "opensearch":
        return opensearch_client(url, request_timeout)
    return es_client(url, request_timeout)


def is_opensearch(client: Any) -> bool:
    """Whether ``client`` is an opensearch-py client (its few API differences are handled where they occur)."""
    return type(client).__module__.startswith("opensearchpy")


def bulk_helpers(client: Any) -> ModuleType:
    """The ``helpers`` module (``streaming_bulk``, ``bulk``) of ``client``'s own library."""
    if is_opensearch(client):
        from opensearchpy import helpers
    else:
        from elasticsearch import helpers
    return helpers


def msearch(client: Any, searches: list[dict]) -> dict:
    """``_msearch`` with header/body lines; both clients take them as ``body=``."""
    return client.msearch(body=searches)
