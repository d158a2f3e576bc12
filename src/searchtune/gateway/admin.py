"""The gateway's own APIs: search pipeline definitions (``/_search/pipeline[/{name}]``), per-index default
pipelines (``/_searchtune/default_pipeline/{index}``), health and Prometheus metrics. Definitions live on the
cluster (pipeline_store.py); writes and deletes need rights (auth.py: the admin key, or the caller's cluster
credentials), and a pipeline is vetted (policy.py: secrets, endpoint) before it is stored.
"""

from __future__ import annotations

import json
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from searchtune.gateway import native_pipelines
from searchtune.gateway.pipelines import PipelineError, redact
from searchtune.gateway.proxy import es_error
from searchtune.gateway.service import Gateway, auth_headers

log = logging.getLogger("searchtune.gateway")


def _not_found(name: str) -> JSONResponse:
    return es_error(404, "resource_not_found_exception", f"search pipeline [{name}] not found")


async def list_pipelines(gateway: Gateway, request: Request) -> Response:
    """``GET /_search/pipeline``: every definition, secrets redacted."""
    if request.method != "GET":
        return es_error(405, "method_not_allowed", f"{request.method} needs a pipeline name")
    definitions = await gateway.store.list_definitions(auth_headers(request))
    own = {n: redact(d) for n, d in definitions.items()}
    return JSONResponse(await native_pipelines.with_cluster_pipelines(gateway, request, own))


async def pipeline(gateway: Gateway, request: Request) -> Response:
    """``PUT|POST|GET|DELETE /_search/pipeline/{name}``."""
    name = request.path_params["name"]
    # every pipeline write through the gateway needs rights, OpenSearch's own too: storing a name on one side
    # removes it from the other (native_pipelines.py), so an open native write could replace a gateway pipeline
    if request.method in ("PUT", "POST", "DELETE") and (refused := gateway.auth.refusal(request)) is not None:
        return refused
    native = await native_pipelines.pipeline_request(gateway, request, name)  # OpenSearch's own pipelines
    if native is not None:
        return native
    auth = auth_headers(request)
    if request.method in ("PUT", "POST"):
        try:
            definition = json.loads(await request.body() or b"null")
        except ValueError as exc:
            return es_error(400, "parse_exception", f"pipeline [{name}]: body is not valid JSON: {exc}")
        try:
            await gateway.store.put_pipeline(name, definition, auth)
        except PipelineError as exc:
            return es_error(400, "parse_exception", str(exc))
        log.info("pipeline stored", extra={"event": "pipeline_put", "pipeline": name})
        return JSONResponse({"acknowledged": True})
    if request.method == "GET":
        definition = await gateway.store.get_definition(name, auth)
        return _not_found(name) if definition is None else JSONResponse({name: redact(definition)})
    if request.method == "DELETE":
        if not await gateway.store.delete_pipeline(name, auth):
            return _not_found(name)
        return JSONResponse({"acknowledged": True})
    return es_error(405, "method_not_allowed", f"{request.method} is not allowed on /_search/pipeline/{name}")


async def default_pipeline(gateway: Gateway, request: Request) -> Response:
    """``PUT|GET|DELETE /_searchtune/default_pipeline/{index}`` (``PUT`` body: ``{"pipeline": NAME}``)."""
    index = request.path_params["index"]
    auth = auth_headers(request)
    if request.method in ("PUT", "POST", "DELETE") and (refused := gateway.auth.refusal(request)) is not None:
        return refused
    if request.method == "PUT":
        try:
            payload = json.loads(await request.body() or b"{}")
            name = payload["pipeline"]
            if not isinstance(name, str) or not name:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return es_error(400, "parse_exception", 'expected {"pipeline": "<name>"}')
        if await gateway.store.get_definition(name, auth) is None:
            return _not_found(name)
        await gateway.store.set_default(index, name, auth)
        return JSONResponse({"acknowledged": True})
    if request.method == "GET":
        name = gateway.settings.default_pipelines.get(index) or await gateway.store.get_default(index, auth)
        if name is None:
            return es_error(404, "resource_not_found_exception", f"index [{index}] has no default pipeline")
        return JSONResponse({index: {"pipeline": name}})
    if request.method == "DELETE":
        found = await gateway.store.delete_default(index, auth)
        return JSONResponse({"acknowledged": True}) if found else es_error(
            404, "resource_not_found_exception", f"index [{index}] has no default pipeline")
    return es_error(405, "method_not_allowed", f"{request.method} not allowed")


async def health(gateway: Gateway, request: Request) -> Response:
    return JSONResponse({"status": "ok", "es_url": gateway.shown_es_url, "breakers": gateway.breakers.states()})


async def metrics(gateway: Gateway, request: Request) -> Response:
    return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
