"""End to end on a real OpenSearch node and a real `searchtune serve` process: connector -> remote model -> search
pipeline with the neural-search ``rerank`` processor. Nothing is faked; the dead and hung endpoints are real
sockets on 127.0.0.1 (a closed port, and a listener that never answers)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from searchtune.search import opensearch_ml as osml

NAME = f"st8-test-{os.getpid()}"
PIPELINE = f"st8-test-pipe-{os.getpid()}"


@pytest.fixture(scope="module")
def setup(opensearch_url: str, os_rerank_server, os_scifact_index: str):
    result = osml.connect(opensearch_url, os_rerank_server.url, PIPELINE, name=NAME)
    yield result
    osml.delete(opensearch_url, PIPELINE, name=NAME)


def _search(url: str, index: str, text: str, pipeline: str | None, size: int = 10) -> httpx.Response:
    body = osml.rerank_search_body({"multi_match": {"query": text, "fields": ["title", "text"]}}, text, size)
    params = {"search_pipeline": pipeline} if pipeline else None
    return httpx.post(f"{url}/{index}/_search", json=body, params=params, timeout=120)


def test_pipeline_order_equals_the_endpoints_order(opensearch_url, os_rerank_server, os_scifact_index, setup,
                                                   scifact_subset) -> None:
    queries, _, _ = scifact_subset
    changed = 0
    for query in list(queries.values())[:3]:
        plain = _search(opensearch_url, os_scifact_index, query.text, None).json()["hits"]["hits"]
        reranked = _search(opensearch_url, os_scifact_index, query.text, PIPELINE).json()["hits"]["hits"]
        assert {h["_id"] for h in reranked} == {h["_id"] for h in plain}  # only the returned hits are reordered
        # what OpenSearch sends for document_fields [title, text]: the values concatenated without a separator
        texts = [h["_source"]["title"] + h["_source"]["text"] for h in plain]
        direct = httpx.post(f"{os_rerank_server.url}/v1/rerank", json={"query": query.text, "documents": texts},
                            timeout=120).json()["results"]
        expected = [plain[r["index"]]["_id"] for r in direct]
        assert [h["_id"] for h in reranked] == expected
        by_id = {plain[r["index"]]["_id"]: r["relevance_score"] for r in direct}
        for hit in reranked:
            assert hit["_score"] == pytest.approx(by_id[hit["_id"]], abs=1e-5)  # FLOAT32 tensor round trip
        changed += [h["_id"] for h in plain] != expected
    assert changed >= 1, "the model never changed BM25's order: the test could not tell reranking from none"


def test_connect_again_updates_in_place(opensearch_url, os_rerank_server, setup) -> None:
    again = osml.connect(opensearch_url, os_rerank_server.url, PIPELINE, name=NAME,
                         client_config=osml.ClientConfig(read_timeout_s=20))
    assert (again.connector_id, again.model_id) == (setup.connector_id, setup.model_id)
    assert again.created == []
    with osml.OpenSearchML(opensearch_url) as ml:
        assert [c["_id"] for c in ml.find_connectors(NAME)] == [setup.connector_id]
        assert [m["_id"] for m in ml.find_models(NAME)] == [setup.model_id]
        connector = ml.request("GET", f"/_plugins/_ml/connectors/{setup.connector_id}")
        assert connector["client_config"]["read_timeout"] == 20
        assert ml.get_model(setup.model_id)["model_state"] == "DEPLOYED"
        scores = ml.predict_similarity(setup.model_id, "cells", ["cells divide", "galaxies"])
    assert scores[0] > scores[1]


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_model_server_down_and_hung_give_opensearchs_errors(opensearch_url, os_scifact_index) -> None:
    name, pipe = f"{NAME}-down", f"{PIPELINE}-down"
    try:
        osml.connect(opensearch_url, f"http://127.0.0.1:{_dead_port()}", pipe, name=name)
        response = _search(opensearch_url, os_scifact_index, "cancer", pipe)
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["type"] == "status_exception"
        assert error["reason"].startswith("Error communicating with remote model: Connection refused")

        with socket.socket() as hung:  # accepts connections, never answers
            hung.bind(("127.0.0.1", 0))
            hung.listen(8)
            osml.connect(opensearch_url, f"http://127.0.0.1:{hung.getsockname()[1]}", pipe, name=name,
                         client_config=osml.ClientConfig(read_timeout_s=2))
            start = time.monotonic()
            response = _search(opensearch_url, os_scifact_index, "cancer", pipe)
            elapsed = time.monotonic() - start
        assert response.status_code == 500
        assert response.json()["error"]["reason"] == "Error communicating with remote model: Read timed out"
        assert 1.5 < elapsed < 15  # read_timeout is in seconds
    finally:
        osml.delete(opensearch_url, pipe, name=name)


def test_cli_connect_test_query_and_delete(opensearch_url, os_rerank_server, os_scifact_index) -> None:
    name, pipe = f"{NAME}-cli", f"{PIPELINE}-cli"
    exe = str(Path(sys.executable).parent / "searchtune")
    base = [exe, "opensearch", "connect", "--os-url", opensearch_url, "--pipeline", pipe, "--name", name]
    done = subprocess.run([*base, "--model-endpoint", os_rerank_server.url, "--index", os_scifact_index,
                           "--test-query", "cancer cells", "--json"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["pipeline"] == pipe and len(result["test_query"]["hits"]) == 5
    same, unrelated = result["test_predict"]
    assert same > unrelated  # the query scored against itself beats unrelated text, through ml-commons
    scores = [h["_score"] for h in result["test_query"]["hits"]]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)  # cosine, not BM25
    missing = subprocess.run([*base], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "--model-endpoint is required" in missing.stderr
    gone = subprocess.run([*base, "--delete", "--json"], capture_output=True, text=True, timeout=120)
    assert gone.returncode == 0, gone.stderr
    removed = json.loads(gone.stdout)["removed"]
    assert f"pipeline {pipe}" in removed and f"connector {result['connector_id']}" in removed
    with osml.OpenSearchML(opensearch_url) as ml:
        assert ml.get_pipeline(pipe) is None
        assert ml.find_connectors(name) == [] and ml.find_models(name) == []
    again = subprocess.run([*base, "--delete", "--json"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and json.loads(again.stdout)["removed"] == []
