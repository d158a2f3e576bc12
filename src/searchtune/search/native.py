"""Elasticsearch's native reranking: an inference endpoint pointing at our model server, and the query that uses it.

For clusters that have the inference API (Enterprise licence or trial; see docs/gateway.md for the rest, which the
gateway serves). Three services can reach a self-hosted reranker:

* ``custom`` (8.19+, 9.1+; not 9.0): request template + JSONPath response parser — the most flexible;
* ``hugging_face`` rerank (8.19+, 9.1+): posts ``{"query", "documents"}`` and reads a top-level array;
* ``alibabacloud-ai-search`` (8.16+): posts ``{"query", "docs"}`` to
  ``{schema}://{host}/v3/openapi/workspaces/{workspace}/ranker/{service_id}`` and reads ``result.scores``.

Everything here builds plain request bodies, so they can be checked against the documented contract without a
cluster that runs them (the test distribution has no inference plugin).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from searchtune.rerank_client import infer_api

SERVICES = ("custom", "hugging_face", "alibabacloud-ai-search")
#: Licences under which the inference API and text_similarity_reranker work (trial from 8.18/9.0).
LICENSES_OK = ("enterprise", "trial")
ALIBABA_DEFAULT_SERVICE_ID = "ops-bge-reranker-larger"


class NativeError(Exception):
    """An expected problem (licence, version, unreachable cluster) with a message that says what to do."""


def parse_version(text: str) -> tuple[int, int, int]:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        raise NativeError(f"cannot read the cluster version from {text!r}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def check_version(service: str, version: tuple[int, int, int]) -> None:
    """NativeError unless ``service`` exists for rerank on this version."""
    major_minor = version[:2]
    shown = ".".join(map(str, version))
    if service in ("custom", "hugging_face"):
        ok = (8, 19) <= major_minor < (9, 0) or major_minor >= (9, 1)
        need = "8.19+ or 9.1+ (not 9.0)"
    elif service == "alibabacloud-ai-search":
        ok = major_minor >= (8, 16)
        need = "8.16+"
    else:
        raise NativeError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    if not ok:
        raise NativeError(f"the {service} rerank service needs Elasticsearch {need}; this cluster is {shown}. "
                          "Use `searchtune gateway`, which reranks on any version.")


def check_license(license_body: dict) -> str:
    """The licence type when it allows the inference API; NativeError with the way out otherwise."""
    info = license_body.get("license") or {}
    kind, status = str(info.get("type", "unknown")).lower(), str(info.get("status", "unknown")).lower()
    if kind in LICENSES_OK and status == "active":
        return kind
    raise NativeError(
        f"the cluster's licence is '{kind}' ({status}): the inference API and text_similarity_reranker need an "
        "active Enterprise licence or a trial (POST _license/start_trial?acknowledge=true, 8.18+/9.0+). "
        "Without one, run `searchtune gateway --es-url URL`: search pipelines with reranking on any licence.")


def _custom_parser(api: str) -> tuple[str, dict[str, str]]:
    """(request template, json_parser) for the custom service, by the server dialect the endpoint speaks."""
    if api in ("cohere", "cohere-v2"):
        return ('{"query": ${query}, "documents": ${input}}',
                {"relevance_score": "$.results[*].relevance_score", "reranked_index": "$.results[*].index"})
    if api == "dashscope":
        return ('{"input": {"query": ${query}, "documents": ${input}}}',
                {"relevance_score": "$.output.results[*].relevance_score",
                 "reranked_index": "$.output.results[*].index"})
    if api == "alibaba":
        return ('{"query": ${query}, "docs": ${input}}',
                {"relevance_score": "$.result.scores[*].score", "reranked_index": "$.result.scores[*].index"})
    raise NativeError(f"the custom service cannot parse a top-level array (the {api} dialect); point "
                      "--model-endpoint at the server's /v1/rerank (Cohere shape) instead")


def alibaba_settings(model_endpoint: str) -> dict[str, str]:
    """host/workspace/service_id/http_schema from a URL (its ranker path when given, else the defaults)."""
    parts = urlsplit(model_endpoint)
    match = re.search(r"/v3/openapi/workspaces/([^/]+)/ranker/([^/]+)", parts.path)
    settings = {"host": parts.netloc, "workspace": match.group(1) if match else "default",
                "service_id": match.group(2) if match else ALIBABA_DEFAULT_SERVICE_ID}
    if parts.scheme == "http":
        settings["http_schema"] = "http"  # undocumented switch; without it ES uses https
    return settings


def inference_endpoint_body(service: str, model_endpoint: str, api_key: str | None = None,
                            model_id: str | None = None) -> dict[str, Any]:
    """The body of ``PUT _inference/rerank/<id>`` for ``service``, pointing at ``model_endpoint``."""
    key = api_key or "unused"  # every service insists on a key; our server ignores it unless configured
    if service == "custom":
        template, parser = _custom_parser(infer_api(model_endpoint))
        if model_id:
            template = template[:-1] + f', "model": {json.dumps(model_id)}}}'
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = "Bearer ${api_key}"
        return {"service": "custom",
                "service_settings": {"url": model_endpoint, "headers": headers, "request": template,
                                     "response": {"json_parser": parser},
                                     "secret_parameters": {"api_key": key}}}
    if service == "hugging_face":
        return {"service": "hugging_face", "service_settings": {"api_key": key, "url": model_endpoint}}
    if service == "alibabacloud-ai-search":
        return {"service": "alibabacloud-ai-search",
                "service_settings": {"api_key": key, **alibaba_settings(model_endpoint)}}
    raise NativeError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")


def reranker_query(inference_id: str, query_text: str, fields: list[str], rerank_field: str = "text",
                   rank_window_size: int = 100, size: int = 10) -> dict[str, Any]:
    """A ready ``text_similarity_reranker`` search body: BM25 over ``fields``, reranked on ``rerank_field``."""
    return {"retriever": {"text_similarity_reranker": {
        "retriever": {"standard": {"query": {"multi_match": {"query": query_text, "fields": fields}}}},
        "field": rerank_field, "inference_id": inference_id, "inference_text": query_text,
        "rank_window_size": rank_window_size}}, "size": size}


@dataclass
class ConnectResult:
    inference_id: str
    service: str
    license: str
    version: str
    response: dict[str, Any]


def _explain(status: int, text: str) -> str:
    if "non-compliant for [inference]" in text or "license" in text.lower() and status == 403:
        return ("the cluster refused: its licence does not cover the inference API (needs Enterprise or a trial). "
                "Use `searchtune gateway` instead.")
    if "no handler found" in text or status == 405 or "Incorrect HTTP method" in text:
        return ("this cluster has no inference API (e.g. a minimal distribution without x-pack inference, or "
                "OpenSearch); use `searchtune gateway`.")
    return f"HTTP {status}: {text[:500]}"


def cluster_version(http: httpx.Client) -> str:
    """Version of the node we talk to (``GET /`` is missing on some minimal distributions, ``_nodes`` is not)."""
    response = http.get("/_nodes/_local", params={"filter_path": "nodes.*.version"})
    response.raise_for_status()
    nodes = response.json().get("nodes") or {}
    if not nodes:
        raise NativeError("the cluster reported no nodes")
    return next(iter(nodes.values()))["version"]


def connect(es_url: str, model_endpoint: str, inference_id: str = "custom-rerank-v1", service: str = "custom",
            api_key: str | None = None, model_id: str | None = None, headers: dict[str, str] | None = None,
            timeout: float = 30.0) -> ConnectResult:
    """Check capability (an inference API at all), licence and version, then create the inference endpoint.
    NativeError with a clear message on refusal. Capability comes first: advising a trial licence to a cluster that
    has no inference API at all (the bundled test distribution, OpenSearch) sends users down a dead end."""
    body = inference_endpoint_body(service, model_endpoint, api_key, model_id)  # validates before any call
    try:
        with httpx.Client(base_url=es_url.rstrip("/"), headers=headers or {}, timeout=timeout) as http:
            capability = http.get("/_inference/_all")
            if capability.status_code in (400, 404, 405, 410) and "license" not in capability.text.lower():
                raise NativeError(_explain(405, capability.text))
            license_response = http.get("/_license")
            if license_response.status_code >= 400:
                raise NativeError(f"cannot read the licence: {_explain(license_response.status_code, license_response.text)}")
            licence = check_license(license_response.json())
            version = cluster_version(http)
            check_version(service, parse_version(version))
            response = http.put(f"/_inference/rerank/{inference_id}", json=body)
            if response.status_code >= 400:
                raise NativeError(f"creating inference endpoint [{inference_id}] failed: "
                                  f"{_explain(response.status_code, response.text)}")
            return ConnectResult(inference_id, service, licence, version, response.json())
    except httpx.HTTPError as exc:
        raise NativeError(f"cannot reach a cluster at {es_url} ({type(exc).__name__}): start a local node with "
                          "`searchtune es start`, or point --es-url at a running cluster") from exc
