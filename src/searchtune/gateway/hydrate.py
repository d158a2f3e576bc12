"""Sources for the hits a hybrid search returns, fetched after fusion with one ``_mget``.

Why: both sides of a hybrid search fetch ``window`` (100) hits, and the fusion needs only their ids and scores.
Fetching the documents' ``_source`` with them cost more than the searches themselves on SciFact (a 100-hit BM25 or
kNN search: 18 ms with sources, 8 ms without; ~175 KB of JSON per side for the gateway to parse), while the client
sees ``size`` (10) hits. So the sides ask for ``_source: false`` and the hits that leave the gateway (the page, or
the window a following rerank step reads) get their sources here, filtered as the client asked, never the vectors.
"""

from __future__ import annotations

import json
from typing import Any

from searchtune.gateway.rerank import source_filter_spec
from searchtune.gateway.upstream import UpstreamError


def source_request(body: dict, params: dict[str, str], vector_field: str) -> dict | bool:
    """The ``_source`` value that gives the client's choice of fields minus the vector field."""
    spec = source_filter_spec(body, params)
    if spec is None:
        return {"excludes": [vector_field]}
    enabled, includes, excludes = spec
    if not enabled:
        return False
    request: dict[str, Any] = {"excludes": [*excludes, vector_field]}
    if includes:
        request["includes"] = includes
    return request


async def hydrate_sources(gateway, hits: list[dict], source: dict | bool, headers: list[tuple[str, str]]) -> None:
    """Set ``_source`` on ``hits`` (in place) from one ``_mget`` on the cluster, with the client's headers.

    A hit whose document vanished since the search keeps no ``_source`` (as a search racing a delete would).
    Raises :class:`UpstreamError` when the cluster does not answer the ``_mget``."""
    wanted = [hit for hit in hits if "_source" not in hit and hit.get("_index") and hit.get("_id") is not None]
    if source is False or not wanted:
        return
    docs = []
    for hit in wanted:
        doc: dict[str, Any] = {"_index": hit["_index"], "_id": hit["_id"], "_source": source}
        if hit.get("_routing") is not None:
            doc["routing"] = hit["_routing"]
        docs.append(doc)
    headers = [h for h in headers if h[0].lower() != "content-type"] + [("Content-Type", "application/json")]
    upstream = await gateway.upstream.request("POST", "/_mget", headers, json.dumps({"docs": docs}).encode())
    if upstream.status != 200:
        raise UpstreamError(f"fetching the sources of {len(docs)} hits failed: HTTP {upstream.status} "
                            f"{upstream.body[:200].decode('utf-8', 'replace')}")
    try:
        found = upstream.json().get("docs") or []
    except ValueError as exc:
        raise UpstreamError(f"the cluster's _mget answer is not JSON: {upstream.body[:200]!r}") from exc
    for hit, doc in zip(wanted, found):
        if isinstance(doc, dict) and doc.get("found") and "_source" in doc:
            hit["_source"] = doc["_source"]
