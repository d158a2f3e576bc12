"""Wire a searchtune rerank endpoint into OpenSearch's own machinery: ml-commons connector, remote model, and a
search pipeline whose neural-search ``rerank`` response processor reorders hits inside the cluster.

Why a module of its own: OpenSearch users expect reranking to stay in the cluster (no gateway in the path), and
the setup is four REST objects with ids that must stay stable across re-runs. Everything is found by *name*, so
running ``connect`` again updates the connector, model and pipeline in place instead of piling up duplicates,
and ``delete`` removes exactly what ``connect`` made. Shapes follow
``shared/reference/integration-contracts.md`` (OpenSearch section) and were checked against OpenSearch 2.19.1.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx


log = logging.getLogger(__name__)

ML = "/_plugins/_ml"

#: The Cohere-shaped body our ``/v1/rerank`` accepts; the Cohere pre-process fills documents, query and top_n.
REQUEST_BODY = ('{ "documents": ${parameters.documents}, "query": "${parameters.query}", '
                '"top_n": ${parameters.top_n} }')
REQUEST_BODY_WITH_MODEL = ('{ "model": "${parameters.model}", "documents": ${parameters.documents}, '
                           '"query": "${parameters.query}", "top_n": ${parameters.top_n} }')


#: ml-commons' built-in Cohere post-process (2.19.1) casts each ``relevance_score`` to ``Double``, but it reads the
#: response with JsonPath/json-smart, which yields ``BigDecimal`` for any number written with more than 18
#: characters (e.g. ``0.045236751437187195``, as Python prints float32 scores): the search then fails with
#: "Fail to execute PREDICT" (ClassCastException BigDecimal -> Double). This Painless post-process does the same
#: job (one ``similarity`` tensor per document, in input order) on ml-commons' Gson-parsed response, where every
#: number is a Double. It runs on the ``lang-painless`` module the managed node installs.
POST_PROCESS_SCRIPT = (
    "def results = params.results; double[] scores = new double[results.size()]; "
    "for (int i = 0; i < results.size(); i++) { def r = results.get(i); "
    "scores[((Number) r.index).intValue()] = ((Number) r.relevance_score).doubleValue(); } "
    "StringBuilder b = new StringBuilder('['); "
    "for (int i = 0; i < scores.length; i++) { if (i > 0) { b.append(','); } "
    "b.append('{\"name\":\"similarity\",\"data_type\":\"FLOAT32\",\"shape\":[1],\"data\":[')"
    ".append(scores[i]).append(']}'); } "
    "b.append(']'); return b.toString();"
)
BUILTIN_POST_PROCESS = "connector.post_process.cohere.rerank"


class OpenSearchMLError(RuntimeError):
    """An ml-commons or search-pipeline call failed; the message names the call and OpenSearch's answer."""


@dataclass(frozen=True)
class ClientConfig:
    """The connector's HTTP client settings, always sent explicitly because ml-commons defaults differ by version.
    Units are ml-commons' own: ``connection_timeout`` in milliseconds, ``read_timeout`` in seconds."""

    connection_timeout_ms: int = 5000
    read_timeout_s: int = 30
    max_connection: int = 30
    max_retry_times: int = 0
    retry_backoff_millis: int = 200
    retry_timeout_seconds: int = 30

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"connection_timeout": self.connection_timeout_ms, "read_timeout": self.read_timeout_s,
                                "max_connection": self.max_connection, "max_retry_times": self.max_retry_times}
        if self.max_retry_times:
            body.update({"retry_backoff_millis": self.retry_backoff_millis,
                         "retry_timeout_seconds": self.retry_timeout_seconds,
                         "retry_backoff_policy": "exponential_full_jitter"})
        return body


@dataclass
class RerankSetup:
    """What ``connect`` created or updated (ids are OpenSearch's)."""

    name: str
    pipeline: str
    endpoint: str
    connector_id: str
    model_id: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rerank_url(endpoint: str) -> str:
    """``http://host:port`` or ``.../v1/rerank`` -> the full rerank URL (the endpoint as users paste it)."""
    endpoint = endpoint.rstrip("/")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--model-endpoint must be an http(s) URL such as http://127.0.0.1:8080, got {endpoint!r}")
    return endpoint if parts.path.endswith("/rerank") else endpoint + "/v1/rerank"


def connector_body(name: str, endpoint: str, model: str | None = None,
                   client_config: ClientConfig | None = None, api_key: str | None = None,
                   post_process: str = "script") -> dict[str, Any]:
    """The ``_create``/update body of a connector to our Cohere-style ``/v1/rerank``.

    ml-commons refuses a connector without a credential, so one is always stored (encrypted by ml-commons); it is
    sent as ``Authorization: Bearer`` only when an API key was given. ``post_process``: ``"builtin"`` for
    ``connector.post_process.cohere.rerank``, ``"script"`` for :data:`POST_PROCESS_SCRIPT` (see there why)."""
    if post_process not in ("builtin", "script"):
        raise ValueError(f"post_process must be 'builtin' or 'script', got {post_process!r}")
    url = rerank_url(endpoint)
    parameters: dict[str, Any] = {"endpoint": urlsplit(url).netloc}
    if model:
        parameters["model"] = model
    headers = {"content-type": "application/json"}
    if api_key:
        headers["Authorization"] = "Bearer ${credential.api_key}"
    return {
        "name": name,
        "description": f"searchtune rerank endpoint {url}",
        "version": "1",
        "protocol": "http",
        "parameters": parameters,
        "credential": {"api_key": api_key or "unused"},
        "client_config": (client_config or ClientConfig()).to_body(),
        "actions": [{
            "action_type": "predict",
            "method": "POST",
            "url": url,
            "headers": headers,
            "request_body": REQUEST_BODY_WITH_MODEL if model else REQUEST_BODY,
            "pre_process_function": "connector.pre_process.cohere.rerank",
            "post_process_function": BUILTIN_POST_PROCESS if post_process == "builtin" else POST_PROCESS_SCRIPT,
        }],
    }


def pipeline_body(model_id: str, document_fields: Sequence[str], description: str = "") -> dict[str, Any]:
    """A search pipeline with one ``rerank`` response processor (a request processor cannot reorder hits)."""
    return {
        "description": description or "searchtune: rerank hits with a remote cross-encoder",
        "response_processors": [{"rerank": {"ml_opensearch": {"model_id": model_id},
                                            "context": {"document_fields": list(document_fields)}}}],
    }


def rerank_search_body(query: dict[str, Any], query_text: str, size: int = 10, **extra: Any) -> dict[str, Any]:
    """A search body that the rerank processor can use: the query text travels in ``ext.rerank``."""
    return {"query": query, "size": size, "ext": {"rerank": {"query_context": {"query_text": query_text}}}, **extra}


class OpenSearchML:
    """Small typed wrapper over the ml-commons and search-pipeline REST APIs (httpx, explicit timeouts)."""

    def __init__(self, url: str, timeout: float = 60.0, client: httpx.Client | None = None):
        self.url = url.rstrip("/")
        self.http = client or httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> OpenSearchML:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing
    def request(self, method: str, path: str, body: Any = None, ok_missing: bool = False,
                params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """One REST call; ``None`` for a 404 when ``ok_missing``; otherwise non-2xx raises with OpenSearch's reason."""
        try:
            response = self.http.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise OpenSearchMLError(f"{method} {self.url}{path} failed: {exc}") from exc
        if ok_missing and response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise OpenSearchMLError(f"{method} {path} -> {response.status_code}: {_reason(response)}")
        return response.json() if response.content else {}

    def _search(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Objects of ``kind`` (connectors, models, model_groups) whose name is exactly ``name``."""
        query: dict[str, Any] = {"size": 100, "query": {"bool": {"must": [{"term": {"name.keyword": name}}]}}}
        if kind == "models":
            query["query"]["bool"]["must_not"] = [{"exists": {"field": "chunk_number"}}]
        try:
            result = self.request("POST", f"{ML}/{kind}/_search", query, ok_missing=True)
        except OpenSearchMLError as exc:
            # before the first object of a kind exists its system index does not exist either
            if "index_not_found" in str(exc) or "no such index" in str(exc):
                return []
            raise
        hits = (result or {}).get("hits", {}).get("hits", [])
        return [{"_id": hit["_id"], **hit.get("_source", {})} for hit in hits
                if hit.get("_source", {}).get("name") == name]

    # ------------------------------------------------------------------ connectors
    def find_connectors(self, name: str) -> list[dict[str, Any]]:
        return self._search("connectors", name)

    def create_connector(self, body: dict[str, Any]) -> str:
        return str(self.request("POST", f"{ML}/connectors/_create", body)["connector_id"])

    def update_connector(self, connector_id: str, body: dict[str, Any]) -> None:
        self.request("PUT", f"{ML}/connectors/{connector_id}", body)

    def delete_connector(self, connector_id: str) -> None:
        self.request("DELETE", f"{ML}/connectors/{connector_id}", ok_missing=True)

    # ------------------------------------------------------------------ models
    def find_models(self, name: str) -> list[dict[str, Any]]:
        return self._search("models", name)

    def get_model(self, model_id: str) -> dict[str, Any] | None:
        return self.request("GET", f"{ML}/models/{model_id}", ok_missing=True)

    def register_model(self, name: str, connector_id: str, description: str = "") -> str:
        body = {"name": name, "function_name": "remote", "connector_id": connector_id,
                "description": description or "searchtune remote reranker"}
        result = self.request("POST", f"{ML}/models/_register", body)
        if result.get("model_id"):
            return str(result["model_id"])
        return str(self.wait_task(result["task_id"])["model_id"])

    def deploy_model(self, model_id: str, timeout: float = 60.0) -> None:
        result = self.request("POST", f"{ML}/models/{model_id}/_deploy")
        if result.get("task_id") and result.get("status") != "COMPLETED":
            self.wait_task(result["task_id"], timeout)
        self.wait_model_state(model_id, {"DEPLOYED"}, timeout)

    def undeploy_model(self, model_id: str) -> None:
        self.request("POST", f"{ML}/models/{model_id}/_undeploy", ok_missing=True)

    def delete_model(self, model_id: str) -> None:
        self.request("DELETE", f"{ML}/models/{model_id}", ok_missing=True)

    def wait_task(self, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            task = self.request("GET", f"{ML}/tasks/{task_id}")
            state = task.get("state")
            if state == "COMPLETED":
                return task
            if state in ("FAILED", "COMPLETED_WITH_ERROR", "CANCELLED"):
                raise OpenSearchMLError(f"ml-commons task {task_id} ended {state}: {task.get('error', task)}")
            if time.monotonic() > deadline:
                raise OpenSearchMLError(f"ml-commons task {task_id} still {state} after {timeout:.0f}s")
            time.sleep(0.5)

    def wait_model_state(self, model_id: str, states: set[str], timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = str((self.get_model(model_id) or {}).get("model_state"))
            if state in states:
                return state
            if time.monotonic() > deadline:
                raise OpenSearchMLError(f"model {model_id} is {state}, not {'/'.join(sorted(states))}, "
                                        f"after {timeout:.0f}s")
            time.sleep(0.5)

    def predict_similarity(self, model_id: str, query: str, docs: Sequence[str]) -> list[float]:
        """Scores through the model, in document order (ml-commons' ``text_similarity`` predict API)."""
        result = self.request("POST", f"{ML}/_predict/text_similarity/{model_id}",
                              {"query_text": query, "text_docs": list(docs)})
        scores: list[float] = []
        for output in result["inference_results"][0]["output"]:
            data = output.get("data")
            scores.append(float(data[0]) if isinstance(data, list) else float(output["dataAsMap"]["result"]))
        return scores

    # ------------------------------------------------------------------ model groups
    def delete_model_groups(self, name: str) -> int:
        groups = self._search("model_groups", name)
        for group in groups:
            self.request("DELETE", f"{ML}/model_groups/{group['_id']}", ok_missing=True)
        return len(groups)

    # ------------------------------------------------------------------ pipelines
    def get_pipeline(self, name: str) -> dict[str, Any] | None:
        result = self.request("GET", f"/_search/pipeline/{name}", ok_missing=True)
        return None if not result else result.get(name)

    def put_pipeline(self, name: str, body: dict[str, Any]) -> None:
        self.request("PUT", f"/_search/pipeline/{name}", body)

    def delete_pipeline(self, name: str) -> bool:
        """``True`` when it existed (a node that never had a pipeline acknowledges any DELETE, so look first)."""
        if self.get_pipeline(name) is None:
            return False
        return self.request("DELETE", f"/_search/pipeline/{name}", ok_missing=True) is not None

    def search(self, index: str, body: dict[str, Any], pipeline: str | None = None) -> dict[str, Any]:
        params = {"search_pipeline": pipeline} if pipeline else None
        return self.request("POST", f"/{index}/_search", body, params=params)


def _reason(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:500]
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        root = (error.get("root_cause") or [{}])[0]
        return str(error.get("reason") or root.get("reason") or json.dumps(error)[:500])
    return str(error)[:500]


def connect(url: str, endpoint: str, pipeline: str, name: str = "searchtune-rerank", model: str | None = None,
            document_fields: Sequence[str] = ("title", "text"), client_config: ClientConfig | None = None,
            api_key: str | None = None, post_process: str = "script", deploy_timeout: float = 60.0,
            timeout: float = 60.0) -> RerankSetup:
    """Create or update connector ``name``, model ``name`` (registered on it, deployed) and pipeline ``pipeline``.

    Idempotent: existing objects are found by name and updated in place (the model is undeployed while its
    connector changes, as ml-commons requires, and deployed again); extra duplicates from older runs are removed.
    """
    body = connector_body(name, endpoint, model, client_config, api_key, post_process)
    created: list[str] = []
    updated: list[str] = []
    with OpenSearchML(url, timeout=timeout) as ml:
        connectors = ml.find_connectors(name)
        models = ml.find_models(name)
        model_id = models[0]["_id"] if models else None
        for extra in models[1:]:
            ml.undeploy_model(extra["_id"])
            ml.delete_model(extra["_id"])
        if model_id:  # ml-commons refuses to change a connector (or a model's connector) while it is deployed
            ml.undeploy_model(model_id)
            ml.wait_model_state(model_id, {"UNDEPLOYED", "REGISTERED", "DEPLOY_FAILED"}, deploy_timeout)
        if connectors:
            connector_id = connectors[0]["_id"]
            ml.update_connector(connector_id, body)
            updated.append(f"connector {connector_id}")
            for extra in connectors[1:]:
                ml.delete_connector(extra["_id"])
        else:
            connector_id = ml.create_connector(body)
            created.append(f"connector {connector_id}")
        if model_id and models[0].get("connector_id") not in (None, connector_id):
            ml.request("PUT", f"{ML}/models/{model_id}", {"connector_id": connector_id})
        if model_id:
            updated.append(f"model {model_id}")
        else:
            model_id = ml.register_model(name, connector_id)
            created.append(f"model {model_id}")
        ml.deploy_model(model_id, deploy_timeout)
        existed = ml.get_pipeline(pipeline) is not None
        ml.put_pipeline(pipeline, pipeline_body(model_id, document_fields,
                                                f"searchtune: rerank with '{name}' at {rerank_url(endpoint)}"))
        (updated if existed else created).append(f"pipeline {pipeline}")
    log.info("opensearch rerank ready: pipeline %s -> model %s -> connector %s -> %s", pipeline, model_id,
             connector_id, rerank_url(endpoint))
    return RerankSetup(name=name, pipeline=pipeline, endpoint=rerank_url(endpoint), connector_id=connector_id,
                       model_id=model_id, created=created, updated=updated)


def delete(url: str, pipeline: str, name: str = "searchtune-rerank", timeout: float = 60.0) -> list[str]:
    """Remove the pipeline, every model and connector named ``name`` and their model group; return what went."""
    removed: list[str] = []
    with OpenSearchML(url, timeout=timeout) as ml:
        if ml.delete_pipeline(pipeline):
            removed.append(f"pipeline {pipeline}")
        for model in ml.find_models(name):
            ml.undeploy_model(model["_id"])
            ml.delete_model(model["_id"])
            removed.append(f"model {model['_id']}")
        for connector in ml.find_connectors(name):
            ml.delete_connector(connector["_id"])
            removed.append(f"connector {connector['_id']}")
        groups = ml.delete_model_groups(name)
        if groups:
            removed.append(f"{groups} model group(s) {name}")
    return removed


def smoke_query(url: str, index: str, pipeline: str, query_text: str, fields: Sequence[str] = ("title", "text"),
                size: int = 10, timeout: float = 60.0) -> list[dict[str, Any]]:
    """One BM25 query through the pipeline (the check ``connect`` runs); returns the reranked hits."""
    body = rerank_search_body({"multi_match": {"query": query_text, "fields": list(fields)}}, query_text, size)
    with OpenSearchML(url, timeout=timeout) as ml:
        return ml.search(index, body, pipeline)["hits"]["hits"]
