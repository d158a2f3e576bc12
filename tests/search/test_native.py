"""The native path (``searchtune es connect``): requests checked against the documented contract, the licence check
against the real local cluster, and our model server answering the exact bodies Elasticsearch sends per service.

The test distribution has no inference plugin, so Elasticsearch itself cannot call the server here; instead each
request is built from the settings ``connect`` generates, the way Elasticsearch builds it, and sent over real HTTP.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.search.native import (NativeError, alibaba_settings, check_license, check_version,
                                      inference_endpoint_body, parse_version, reranker_query)

KEY = "t-gw-native-key"
QUERY = "what reduces the risk of heart disease"
DOCS = ["Regular exercise lowers the risk of cardiovascular disease.", "The stock market fell on Monday.",
        "Statins reduce cholesterol and heart attack risk.", ""]


@pytest.fixture(scope="module")
def server(base_model_path: str):
    from searchtune.serve.process import start_server_process

    handle = start_server_process(base_model_path, port=0, api_key=KEY, extra_args=["--max-length", "64"])
    yield handle
    handle.stop()


def test_custom_service_body_follows_contract():
    body = inference_endpoint_body("custom", "http://127.0.0.1:8080/v1/rerank", api_key="k", model_id="m1")
    settings = body["service_settings"]
    assert body["service"] == "custom" and settings["url"] == "http://127.0.0.1:8080/v1/rerank"
    # templates are not quoted; only the documented placeholders are used
    assert set(re.findall(r"\$\{(\w+)\}", settings["request"])) == {"query", "input"}
    assert '"${query}"' not in settings["request"] and json.loads(
        settings["request"].replace("${query}", '"q"').replace("${input}", '["d"]')) == {
        "query": "q", "documents": ["d"], "model": "m1"}
    assert set(settings["response"]["json_parser"]) <= {"relevance_score", "reranked_index", "document_text"}
    assert "relevance_score" in settings["response"]["json_parser"]
    assert settings["headers"]["Authorization"] == "Bearer ${api_key}" and settings["secret_parameters"] == {"api_key": "k"}
    with pytest.raises(NativeError, match="top-level array"):
        inference_endpoint_body("custom", "http://127.0.0.1:8080/rerank")


def test_other_services_and_versions():
    assert inference_endpoint_body("hugging_face", "http://h:1/rerank", "k") == {
        "service": "hugging_face", "service_settings": {"api_key": "k", "url": "http://h:1/rerank"}}
    assert alibaba_settings("http://127.0.0.1:81/v3/openapi/workspaces/ws1/ranker/svc") == {
        "host": "127.0.0.1:81", "workspace": "ws1", "service_id": "svc", "http_schema": "http"}
    assert "http_schema" not in alibaba_settings("https://x.example.com")
    check_version("custom", parse_version("9.1.0"))
    check_version("custom", parse_version("8.19.3"))
    check_version("alibabacloud-ai-search", parse_version("8.16.0"))
    for service, version in [("custom", "9.0.4"), ("hugging_face", "8.18.0"), ("alibabacloud-ai-search", "8.15.1")]:
        with pytest.raises(NativeError, match="searchtune gateway"):
            check_version(service, parse_version(version))
    assert check_license({"license": {"type": "trial", "status": "active"}}) == "trial"
    with pytest.raises(NativeError, match="Enterprise"):
        check_license({"license": {"type": "enterprise", "status": "expired"}})
    query = reranker_query("custom-rerank-v1", "q", ["title^2", "text"])
    reranker = query["retriever"]["text_similarity_reranker"]
    assert reranker["inference_id"] == "custom-rerank-v1" and reranker["inference_text"] == "q"
    assert reranker["retriever"]["standard"]["query"]["multi_match"]["fields"] == ["title^2", "text"]


def test_connect_checks_capability_then_licence_on_real_cluster(es_url: str, es):
    """The local node runs a basic licence, and the bundled test distribution has no inference API at all: connect
    must stop before creating anything, saying first what the cluster cannot do (no trial advice when no licence
    would help), else what the licence lacks."""
    licence = es.license.get()["license"]["type"]
    if licence in ("enterprise", "trial"):
        pytest.skip("this cluster has an inference-capable licence")
    result = CliRunner().invoke(app, ["es", "connect", "--es-url", es_url, "--model-endpoint",
                                      "http://127.0.0.1:9/v1/rerank", "--inference-id", "t-gw-native"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    if httpx.get(f"{es_url}/_inference/_all", timeout=10).status_code == 200:
        assert f"licence is '{licence}'" in text and "searchtune gateway" in text
    else:
        assert "no inference API" in text and "start_trial" not in text and "searchtune gateway" in text


def _jsonpath(payload, path: str) -> list:
    """The subset of JSONPath the custom service's parsers use here: ``$.a.b[*].c``."""
    nodes = [payload]
    for part in path.removeprefix("$.").split("."):
        name, star = part.removesuffix("[*]"), part.endswith("[*]")
        nodes = [n[name] for n in nodes]
        if star:
            nodes = [item for n in nodes for item in n]
    return nodes


def _render(template: str, query: str, docs: list[str]) -> bytes:
    return template.replace("${query}", json.dumps(query)).replace("${input}", json.dumps(docs)).encode()


@pytest.mark.parametrize("route", ["/v1/rerank", "/v2/rerank", "/api/v1/services/rerank/text-rerank/text-rerank"])
def test_server_answers_custom_service_as_es_sends_it(server, route):
    settings = inference_endpoint_body("custom", server.url + route, api_key=KEY)["service_settings"]
    headers = {k: v.replace("${api_key}", KEY) for k, v in settings["headers"].items()}
    response = httpx.post(settings["url"], content=_render(settings["request"], QUERY, DOCS), headers=headers,
                          timeout=60)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert isinstance(payload, dict)  # the custom service cannot parse a top-level array
    parser = settings["response"]["json_parser"]
    scores = _jsonpath(payload, parser["relevance_score"])
    indexes = _jsonpath(payload, parser["reranked_index"])
    assert sorted(indexes) == list(range(len(DOCS))) and len(scores) == len(DOCS)
    by_index = dict(zip(indexes, scores))
    assert by_index[0] > by_index[1] and by_index[2] > by_index[1]  # relevant beats irrelevant


def test_server_answers_hugging_face_rerank_as_es_sends_it(server):
    settings = inference_endpoint_body("hugging_face", server.url + "/rerank", api_key=KEY)["service_settings"]
    for body in ({"query": QUERY, "documents": DOCS},
                 {"query": QUERY, "documents": DOCS, "return_documents": True, "top_n": len(DOCS)}):
        response = httpx.post(settings["url"], json=body, headers={"Authorization": f"Bearer {settings['api_key']}"},
                              timeout=60)
        assert response.status_code == 200, response.text
        rows = response.json()
        assert isinstance(rows, list) and sorted(r["index"] for r in rows) == list(range(len(DOCS)))
        for row in rows:
            assert set(row) <= {"index", "score", "relevance_score", "text", "document"}
            assert ("score" in row) != ("relevance_score" in row)


def test_server_answers_alibaba_ranker_as_es_sends_it(server):
    settings = inference_endpoint_body("alibabacloud-ai-search", server.url, api_key=KEY)["service_settings"]
    url = (f"{settings.get('http_schema', 'https')}://{settings['host']}/v3/openapi/workspaces/"
           f"{settings['workspace']}/ranker/{settings['service_id']}")
    response = httpx.post(url, json={"query": QUERY, "docs": DOCS}, headers={"Authorization": f"Bearer {KEY}"},
                          timeout=60)
    assert response.status_code == 200, response.text
    scores = response.json()["result"]["scores"]
    assert sorted(s["index"] for s in scores) == list(range(len(DOCS)))
    assert all(set(s) == {"index", "score"} for s in scores)
    unauthorized = httpx.post(url, json={"query": QUERY, "docs": DOCS}, timeout=60)
    assert unauthorized.status_code == 401
