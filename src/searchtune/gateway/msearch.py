"""``[/{index}]/_msearch`` with pipelines: sub-searches that have one (URL ``search_pipeline`` or the
``X-Searchtune-Pipeline`` header, a header line's ``search_pipeline``, or their target's default) run as pipeline
searches, concurrently (``max_concurrent_searches``, default 8); an ``_msearch`` where none applies, or whose body is
not NDJSON pairs, is proxied unchanged. In front of OpenSearch, a sub-search naming one of OpenSearch's own pipelines
is sent to it as a single search with that pipeline (its ``_msearch`` takes none; native_pipelines.py)."""

from __future__ import annotations

import asyncio
import json
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from searchtune.gateway import native_pipelines
from searchtune.gateway.proxy import error_body, es_error, forward_headers, proxy
from searchtune.gateway.search import run_search
from searchtune.gateway.service import PIPELINE_HEADER, Gateway, auth_headers


class MsearchError(ValueError):
    """A request the gateway answers 400 (bad parameter, odd line count) instead of guessing."""


def _pairs(raw: bytes) -> list[tuple[dict, dict]] | None:
    """(header, body) pairs of an NDJSON ``_msearch`` body; ``None`` when it is not JSON objects (the cluster then
    says what is wrong). An odd number of lines is refused: Elasticsearch would drop the last header silently."""
    lines = [line for line in raw.split(b"\n") if line.strip()]
    if len(lines) % 2:
        raise MsearchError(f"the _msearch body has {len(lines)} non-empty lines: every header line needs a search "
                           f"body line (line {len(lines)} has none)")
    try:
        pairs = [(json.loads(lines[i]), json.loads(lines[i + 1])) for i in range(0, len(lines) - 1, 2)]
    except ValueError:
        return None
    if not all(isinstance(h, dict) and isinstance(b, dict) for h, b in pairs):
        return None
    return pairs


def _max_concurrent(value: str | None) -> int:
    """``max_concurrent_searches`` as Elasticsearch reads it (default 8 here); 400 when not a positive integer."""
    if value is None or value == "":
        return 8
    try:
        number = int(value)
    except ValueError:
        raise MsearchError(f"Failed to parse int parameter [max_concurrent_searches] with value [{value}]") from None
    if number < 1:
        raise MsearchError(f"max_concurrent_searches must be positive, got [{value}]")
    return number


def _sub_params(base: list[tuple[str, str]], header: dict) -> list[tuple[str, str]]:
    """A sub-search's URL parameters: the ``_msearch``'s own plus those of its header line."""
    params = list(base)
    for key, value in header.items():
        if key != "index":
            text = ",".join(map(str, value)) if isinstance(value, list) else value
            params.append((key, str(text).lower() if isinstance(value, bool) else str(text)))
    return params


async def msearch_endpoint(gateway: Gateway, request: Request) -> Response:
    try:
        limit = asyncio.Semaphore(_max_concurrent(request.query_params.get("max_concurrent_searches")))
        pairs = _pairs(await request.body())
    except MsearchError as exc:
        return es_error(400, "illegal_argument_exception", str(exc))
    if pairs is None:
        return await proxy(gateway, request)
    path_index = request.path_params.get("index", "")
    url_pipeline = request.query_params.get("search_pipeline", request.headers.get(PIPELINE_HEADER))
    auth = auth_headers(request)
    plan = []
    for header, body in pairs:
        index = header.get("index") or path_index
        index = ",".join(index) if isinstance(index, list) else str(index)
        name = header.get("search_pipeline", url_pipeline)
        header = {k: v for k, v in header.items() if k != "search_pipeline"}
        if name is None:
            name = await gateway.default_pipeline(index, auth)
        name = None if name in (None, "", "_none") else name
        if name and await native_pipelines.is_native(gateway, request, name):
            header, name = {**header, "search_pipeline": name}, None  # the cluster runs it (see _sub_params)
        plan.append((index, name, header, body))
    if not any(name or "search_pipeline" in header for _, name, header, _ in plan):
        return await proxy(gateway, request)
    base_params = [(k, v) for k, v in request.query_params.multi_items()
                   if k not in ("search_pipeline", "max_concurrent_searches")]
    headers = forward_headers(request, drop_encoding=True)
    began = time.perf_counter()

    async def one(index: str, name: str | None, header: dict, body: dict) -> dict:
        async with limit:
            status, answer, _ = await run_search(gateway, index, name, body, _sub_params(base_params, header),
                                                 headers, auth)
        if isinstance(answer, bytes):
            try:
                answer = json.loads(answer)
            except ValueError:
                answer = error_body(status, "gateway_exception", answer.decode("utf-8", "replace")[:500])
        return {**answer, "status": status}

    responses = await asyncio.gather(*(one(*item) for item in plan))
    return JSONResponse({"took": int((time.perf_counter() - began) * 1000), "responses": list(responses)},
                        headers={"X-elastic-product": "Elasticsearch"})
