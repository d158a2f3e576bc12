"""Pipeline definitions and per-index default pipelines, persisted in an index on the cluster itself.

Keeping them on the cluster (not in the gateway's memory or disk) lets any number of gateway replicas share them:
a pipeline PUT through one is seen by the others within ``cache_ttl`` seconds (GET of the pipeline API itself always
reads the cluster). The index is hidden and not dot-prefixed (dot-prefixed names are reserved in the next ES major).
Definitions are stored verbatim, so ``$VAR`` header references stay references.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from searchtune.gateway.pipelines import Pipeline, PipelineError, parse_pipeline
from searchtune.gateway.upstream import Upstream, UpstreamError, UpstreamResponse

DEFAULT_INDEX = "searchtune-pipelines"
_MAPPING = {
    "settings": {"index": {"hidden": True, "number_of_shards": 1, "auto_expand_replicas": "0-1"}},
    "mappings": {"dynamic": False, "properties": {"kind": {"type": "keyword"}, "name": {"type": "keyword"},
                                                  "index": {"type": "keyword"}, "updated_at": {"type": "date"},
                                                  "definition": {"type": "object", "enabled": False}}},
}


class StoreError(Exception):
    """The cluster refused or could not be reached; ``status``/``body`` are passed on to the client."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"pipeline store: HTTP {status}: {str(body)[:300]}")
        self.status = status
        self.body = body


def _pipeline_id(name: str) -> str:
    return quote(f"pipeline:{name}", safe="")


def _default_id(index: str) -> str:
    return quote(f"default:{index}", safe="")


def _json(response: UpstreamResponse) -> Any:
    """The cluster's JSON answer; a non-JSON one (a proxy's HTML page) is an ES-shaped 502, never a 500."""
    try:
        return response.json()
    except ValueError:
        reason = f"the cluster answered HTTP {response.status} with a body that is not JSON: {response.body[:200]!r}"
        raise StoreError(502, {"error": {"root_cause": [{"type": "gateway_exception", "reason": reason}],
                                         "type": "gateway_exception", "reason": reason}, "status": 502}) from None


class PipelineStore:
    """Reads are made with the gateway's own credentials (pipelines hold no secrets, and searches of any caller
    need them); writes too, unless ``delegate_writes`` (``--pipeline-auth cluster``): then with the caller's, so the
    cluster's security decides. ``vet`` checks a pipeline before it is stored (policy.py)."""

    def __init__(self, http: Upstream, index: str = DEFAULT_INDEX, cache_ttl: float = 1.0,
                 delegate_writes: bool = False, vet: Callable[[Pipeline], None] | None = None) -> None:
        self.http = http
        self.index = index
        self.cache_ttl = cache_ttl
        self.delegate_writes = delegate_writes
        self.vet = vet
        self._cache: dict[str, tuple[float, Any]] = {}
        self._index_ready = False

    # --- raw document access -------------------------------------------------------------------------------
    async def _request(self, method: str, path: str, headers: dict[str, str] | None = None,
                       json: Any = None) -> UpstreamResponse:
        writes = method in ("PUT", "POST", "DELETE") and not path.split("?")[0].endswith("/_search")
        headers = headers if writes and self.delegate_writes else {}
        try:
            return await self.http.request_json(method, path, headers, json)
        except UpstreamError as exc:
            raise StoreError(502, {"error": {"type": "gateway_exception", "reason": str(exc)}, "status": 502}) from exc

    async def _ensure_index(self, headers: dict[str, str] | None) -> None:
        if self._index_ready:
            return
        response = await self._request("PUT", f"/{self.index}", headers, _MAPPING)
        if response.status >= 400 and b"resource_already_exists" not in response.body:
            raise StoreError(response.status, _json(response))
        self._index_ready = True

    async def _get_doc(self, doc_id: str, headers: dict[str, str] | None) -> dict | None:
        response = await self._request("GET", f"/{self.index}/_doc/{doc_id}", headers)
        if response.status == 404:
            return None
        if response.status >= 400:
            raise StoreError(response.status, _json(response))
        return _json(response).get("_source")

    async def _put_doc(self, doc_id: str, source: dict, headers: dict[str, str] | None) -> None:
        await self._ensure_index(headers)
        response = await self._request("PUT", f"/{self.index}/_doc/{doc_id}?refresh=wait_for", headers, source)
        if response.status >= 400:
            if response.status == 404:  # index deleted behind our back
                self._index_ready = False
            raise StoreError(response.status, _json(response))
        _json(response)  # an answer that is not the cluster's (a proxy's page) is no proof of a write
        self._invalidate()

    async def _delete_doc(self, doc_id: str, headers: dict[str, str] | None) -> bool:
        response = await self._request("DELETE", f"/{self.index}/_doc/{doc_id}?refresh=wait_for", headers)
        if response.status == 404:
            return False
        if response.status >= 400:
            raise StoreError(response.status, _json(response))
        _json(response)  # an answer that is not the cluster's (a proxy's page) is no proof of a write
        self._invalidate()
        return True

    def _invalidate(self) -> None:
        self._cache.clear()

    async def _cached(self, key: str, loader) -> Any:
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.cache_ttl:
            return hit[1]
        value = await loader()
        self._cache[key] = (now, value)
        return value

    # --- pipelines -----------------------------------------------------------------------------------------
    async def put_pipeline(self, name: str, definition: dict, headers: dict[str, str] | None = None) -> Pipeline:
        """Validate (PipelineError) then store verbatim."""
        pipeline = parse_pipeline(name, definition)
        if self.vet is not None:
            self.vet(pipeline)
        await self._put_doc(_pipeline_id(name), {"kind": "pipeline", "name": name, "definition": definition,
                                                 "updated_at": datetime.now(UTC).isoformat()}, headers)
        return pipeline

    async def get_definition(self, name: str, headers: dict[str, str] | None = None) -> dict | None:
        source = await self._get_doc(_pipeline_id(name), headers)
        return source.get("definition") if source else None

    async def _sources(self, kind: str, headers: dict[str, str] | None) -> list[dict]:
        """Every stored document of ``kind`` (``pipeline`` or ``default``), sorted by name."""
        body = {"size": 10_000, "query": {"term": {"kind": kind}}, "sort": [{"name": "asc"}]}
        response = await self._request("POST", f"/{self.index}/_search?ignore_unavailable=true", headers, body)
        if response.status == 404:
            return []
        if response.status >= 400:
            raise StoreError(response.status, _json(response))
        return [h["_source"] for h in _json(response)["hits"]["hits"]]

    async def list_definitions(self, headers: dict[str, str] | None = None) -> dict[str, dict]:
        return {source["name"]: source["definition"] for source in await self._sources("pipeline", headers)}

    async def delete_pipeline(self, name: str, headers: dict[str, str] | None = None) -> bool:
        return await self._delete_doc(_pipeline_id(name), headers)

    async def pipeline(self, name: str, headers: dict[str, str] | None = None) -> Pipeline | None:
        """Parsed pipeline for a search, cached ``cache_ttl`` seconds. PipelineError if the stored one is invalid."""

        async def load() -> Pipeline | PipelineError | None:
            definition = await self.get_definition(name, headers)
            if definition is None:
                return None
            try:
                return parse_pipeline(name, definition)
            except PipelineError as exc:
                return exc

        value = await self._cached(f"p:{name}", load)
        if isinstance(value, PipelineError):
            raise value
        return value

    # --- per-index default pipelines ----------------------------------------------------------------------
    async def set_default(self, index: str, pipeline: str, headers: dict[str, str] | None = None) -> None:
        await self._put_doc(_default_id(index), {"kind": "default", "index": index, "name": pipeline,
                                                 "updated_at": datetime.now(UTC).isoformat()}, headers)

    async def get_default(self, index: str, headers: dict[str, str] | None = None) -> str | None:
        source = await self._get_doc(_default_id(index), headers)
        return source.get("name") if source else None

    async def delete_default(self, index: str, headers: dict[str, str] | None = None) -> bool:
        return await self._delete_doc(_default_id(index), headers)

    async def defaults_cached(self, headers: dict[str, str] | None = None) -> dict[str, str]:
        """Every stored default, ``{index, alias or data stream: pipeline}``, cached ``cache_ttl`` seconds: one
        read serves every search target (resolve.py matches targets against it)."""

        async def load() -> dict[str, str]:
            try:
                return {source["index"]: source["name"] for source in await self._sources("default", headers)}
            except (StoreError, KeyError, ValueError):
                return {}  # never fail a plain search over the default-pipeline lookup

        return await self._cached("defaults", load)
