"""Pass-through to the cluster and the header rules every response follows: hop-by-hop headers dropped, the
cluster's headers (repeated ones such as ``Warning`` included) copied back, errors shaped like Elasticsearch's so
clients raise their usual exceptions."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from searchtune.gateway.service import Gateway
from searchtune.gateway.upstream import UpstreamError, UpstreamResponse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "expect",
              "transfer-encoding", "upgrade", "host", "content-length"}


def error_body(status: int, error_type: str, reason: str) -> dict[str, Any]:
    cause = {"type": error_type, "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def es_error(status: int, error_type: str, reason: str) -> JSONResponse:
    """An error body shaped like Elasticsearch's, so clients raise their usual exceptions."""
    return JSONResponse(error_body(status, error_type, reason), status_code=status,
                        headers={"X-elastic-product": "Elasticsearch"})


def forward_headers(request: Request, drop_encoding: bool = False) -> list[tuple[str, str]]:
    headers = []
    for name, value in request.headers.raw:
        lower = name.decode("latin-1").lower()
        if lower in HOP_BY_HOP or (drop_encoding and lower == "accept-encoding"):
            continue
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    return headers


def json_content_type(headers: list[tuple[str, str]]) -> str:
    """Content-Type for a JSON body we send on the client's behalf. Elasticsearch insists that a compatible-with
    version on Accept is matched on Content-Type (elasticsearch-py sends ``...+json; compatible-with=9``), and an
    ``_msearch`` client's ``+x-ndjson`` becomes ``+json`` for the single searches it is split into."""
    found = {name.lower(): value for name, value in headers}
    content_type = found.get("content-type", "")
    if "vnd.elasticsearch" in content_type:
        return content_type.replace("+x-ndjson", "+json")
    accept = found.get("accept", "")
    if "compatible-with=" in accept:
        return "application/vnd.elasticsearch+json; compatible-with=" + accept.split("compatible-with=")[1].split(";")[0]
    return "application/json"


def with_upstream_headers(response: Response, upstream: UpstreamResponse, keep_length: bool = False,
                          keep_encoding: bool = True) -> Response:
    """Copy the cluster's response headers (repeated ones such as ``Warning`` included) onto ``response``."""
    own = {k for k, _ in response.raw_headers}
    for name, value in upstream.headers:
        lower = name.lower()
        if lower in HOP_BY_HOP and not (keep_length and lower == "content-length"):
            continue
        if lower == "content-encoding" and not keep_encoding:
            continue
        key = lower.encode("latin-1")
        if key in own:
            if key == b"content-length":
                continue
            response.raw_headers = [(k, v) for k, v in response.raw_headers if k != key]
            own.discard(key)
        response.raw_headers.append((key, value.encode("latin-1")))
    return response


async def proxy(gateway: Gateway, request: Request, search_pipeline: str | None = None) -> Response:
    """Forward as is and answer the raw bytes (compressed or not) with the cluster's status and headers.
    ``search_pipeline`` names a pipeline of the cluster's own (OpenSearch) to keep on the URL."""
    body = await request.body()
    query = request.scope.get("query_string", b"").decode("latin-1")
    if "search_pipeline" in query:  # ours (e.g. search_pipeline=_none); Elasticsearch would reject it
        query = "&".join(p for p in query.split("&") if p.split("=", 1)[0] != "search_pipeline")
    if search_pipeline:
        query = "&".join(p for p in (query, "search_pipeline=" + quote(search_pipeline, safe="")) if p)
    target = request.scope.get("raw_path", b"").decode("latin-1") or request.scope["path"]
    try:
        upstream = await gateway.upstream.request(request.method, target + ("?" + query if query else ""),
                                                  forward_headers(request), body)
    except UpstreamError as exc:
        return es_error(502, "gateway_exception", str(exc))
    if request.method == "HEAD":  # no body, but the length the cluster announced
        response = Response(status_code=upstream.status)
        response.raw_headers = [(k, v) for k, v in response.raw_headers if k != b"content-length"]
        return with_upstream_headers(response, upstream, keep_length=True)
    return with_upstream_headers(Response(content=upstream.body, status_code=upstream.status), upstream)
