"""``GET /`` and ``HEAD /``: what ``es.info()`` and ``es.ping()`` call when an application starts.

Passed through when the cluster answers them. Elasticsearch builds without the root route (the integ-test
distribution answers 405, so ``ping()`` is ``False`` and ``info()`` raises even against the node itself) get the same
document assembled from ``_nodes/_local`` and the cluster state, asked with the caller's credentials (a caller the
cluster refuses gets the cluster's refusal, never the document).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from searchtune.gateway.product import ELASTICSEARCH
from searchtune.gateway.proxy import proxy
from searchtune.gateway.service import Gateway, auth_headers
from searchtune.gateway.upstream import UpstreamError

async def _info_document(gateway: Gateway, auth: dict[str, str]) -> tuple[int, dict]:
    """Elasticsearch's ``GET /`` document, from ``_nodes/_local`` and the cluster state (one node's view, as the
    real route gives). On a refusal: the cluster's status and error body."""
    nodes_path = ("/_nodes/_local?filter_path=cluster_name,nodes.*.name,nodes.*.version,nodes.*.build_flavor,"
                  "nodes.*.build_type,nodes.*.build_hash")
    nodes = await gateway.upstream.request_json("GET", nodes_path, auth)
    if nodes.status != 200:
        return nodes.status, nodes.json()
    state = await gateway.upstream.request_json("GET", "/_cluster/state/metadata?filter_path=metadata.cluster_uuid",
                                                auth)
    if state.status != 200:
        return state.status, state.json()
    answer = nodes.json()
    node = next(iter((answer.get("nodes") or {}).values()), {})
    version = {key: node[key] for key in ("build_flavor", "build_type", "build_hash") if key in node}
    return 200, {"name": node.get("name", ""), "cluster_name": answer.get("cluster_name", ""),
                 "cluster_uuid": (state.json().get("metadata") or {}).get("cluster_uuid", "_na_"),
                 "version": {"number": node.get("version", ""), **version, "build_snapshot": False},
                 "tagline": "You Know, for Search"}


async def root(gateway: Gateway, request: Request) -> Response:
    """``GET /`` and ``HEAD /``: the cluster's own answer when it has the route, else the assembled document."""
    passed = await proxy(gateway, request)
    if passed.status_code not in (400, 404, 405) or await gateway.product.detect(gateway.upstream, auth_headers(request)) != ELASTICSEARCH:
        return passed
    try:
        status, document = await _info_document(gateway, auth_headers(request))
    except (UpstreamError, ValueError):
        return passed
    if request.method == "HEAD":
        return Response(status_code=status, headers={"content-type": "application/json"})
    return JSONResponse(document, status_code=status)
