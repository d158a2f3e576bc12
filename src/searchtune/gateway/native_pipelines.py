"""OpenSearch's own search pipelines, kept working behind the gateway.

In front of OpenSearch the gateway shares the ``/_search/pipeline`` names with the cluster. It keeps the pipelines it
runs itself (its own processors, e.g. ``neural_rerank``; OpenSearch's ``rerank`` only when the gateway can reach the
model: an ``endpoint`` or a ``--model`` entry) and hands every other definition to OpenSearch, which stores and runs
it: ``normalization-processor`` for hybrid queries, ``filter_query``, a ``rerank`` on an ml-commons model, ...
A name lives on one side: storing it on one side removes it from the other. A search naming a pipeline the gateway
does not hold goes to OpenSearch with its ``search_pipeline`` intact; ``GET``/``DELETE`` of such a name, and the
cluster's part of ``GET /_search/pipeline``, are OpenSearch's answers. In front of Elasticsearch (no search
pipelines of its own) none of this applies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from searchtune.gateway.pipelines import _SUPPORTED as GATEWAY_PROCESSORS
from searchtune.gateway.pipelines import PipelineError, parse_pipeline
from searchtune.gateway.product import OPENSEARCH
from searchtune.gateway.proxy import proxy
from searchtune.gateway.service import Gateway, auth_headers
from searchtune.gateway.upstream import UpstreamError


def runs_in_gateway(definition: Mapping[str, Any], models: Mapping[str, str]) -> bool:
    """Whether the gateway itself runs ``definition`` (else, in front of OpenSearch, the cluster does)."""
    for stage in ("request_processors", "response_processors", "phase_results_processors"):
        for wrapper in definition.get(stage) or []:
            if not isinstance(wrapper, dict):
                continue
            for kind, config in wrapper.items():
                if kind not in GATEWAY_PROCESSORS:
                    continue
                if kind != "rerank":
                    return True
                model = (config or {}).get("ml_opensearch") if isinstance(config, dict) else None
                if isinstance(model, dict) and (model.get("endpoint") or model.get("model_id") in models):
                    return True
    return False


async def _in_front_of_opensearch(gateway: Gateway, request: Request) -> bool:
    return await gateway.product.detect(gateway.upstream, auth_headers(request)) == OPENSEARCH


async def is_native(gateway: Gateway, request: Request, name: str) -> bool:
    """A search's pipeline ``name`` is the cluster's: OpenSearch, and the gateway holds no pipeline by that name."""
    if not await _in_front_of_opensearch(gateway, request):
        return False
    try:
        return await gateway.store.pipeline(name, auth_headers(request)) is None
    except PipelineError:
        return False  # the gateway's own, stored invalid: the gateway reports it


async def pipeline_request(gateway: Gateway, request: Request, name: str) -> Response | None:
    """``/_search/pipeline/{name}`` when it belongs to OpenSearch: the cluster's answer; ``None``: the gateway's."""
    if not await _in_front_of_opensearch(gateway, request):
        return None
    auth = auth_headers(request)
    if request.method in ("PUT", "POST"):
        try:
            definition = json.loads(await request.body() or b"null")
        except ValueError:
            return None  # the gateway's own 400 names the JSON error
        if not isinstance(definition, dict):
            return None
        if runs_in_gateway(definition, gateway.settings.models):
            try:
                parse_pipeline(name, definition)
            except PipelineError:
                return None  # the gateway's own 400 names the field; nothing on the cluster is touched
            await _delete_on_cluster(gateway, name, auth)
            return None
        if await gateway.store.get_definition(name, auth) is not None:
            await gateway.store.delete_pipeline(name, auth)
        return await proxy(gateway, request)
    if await gateway.store.get_definition(name, auth) is None:
        return await proxy(gateway, request)
    return None


async def _delete_on_cluster(gateway: Gateway, name: str, auth: dict[str, str]) -> None:
    """The gateway takes ``name`` over: OpenSearch's pipeline of that name would otherwise be hidden behind it."""
    try:
        await gateway.upstream.request_json("DELETE", f"/_search/pipeline/{quote(name, safe='')}", auth)
    except UpstreamError:
        pass  # unreachable now: the search path prefers the gateway's pipeline anyway


async def with_cluster_pipelines(gateway: Gateway, request: Request, own: dict[str, Any]) -> dict[str, Any]:
    """``GET /_search/pipeline``: in front of OpenSearch, the cluster's pipelines too (the gateway's win a name)."""
    if not await _in_front_of_opensearch(gateway, request):
        return own
    try:
        response = await gateway.upstream.request_json("GET", "/_search/pipeline", auth_headers(request))
        theirs = response.json() if response.status == 200 else {}
    except (UpstreamError, ValueError):
        theirs = {}
    return {**(theirs if isinstance(theirs, dict) else {}), **own}
