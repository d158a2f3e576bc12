"""opensearch-py (``http_compress=True``) through the gateway (a real subprocess) in front of the real OpenSearch
node: OpenSearch's own search pipelines keep working behind it. A ``normalization-processor`` pipeline (hybrid
search) is created, listed, used and deleted through the gateway with opensearch-py and lands on, and is run by,
OpenSearch itself; the gateway's own pipelines live beside it; the gateway's responses claim no Elasticsearch
product."""

from __future__ import annotations

import os

import httpx
import pytest
from opensearchpy import NotFoundError, OpenSearch

from searchtune.gateway.auth import ADMIN_KEY_HEADER
from searchtune.gateway.process import start_gateway_process
from searchtune.search.client import opensearch_client

TEXT = "cancer cells tumour growth"
HYBRID = {"query": {"hybrid": {"queries": [{"match": {"title": TEXT}}, {"match": {"text": TEXT}}]}}, "size": 10}
NORMALIZATION = {"description": "min-max normalisation of a hybrid query's sub-scores",
                 "phase_results_processors": [{"normalization-processor": {
                     "normalization": {"technique": "min_max"},
                     "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.3, 0.7]}}}}]}

ADMIN_KEY = f"st8-cl-admin-{os.getpid()}"
ADMIN = {ADMIN_KEY_HEADER: ADMIN_KEY}


@pytest.fixture(scope="module")
def gateway(opensearch_url: str):
    store = f"st8-cl-pipelines-{os.getpid()}"
    with start_gateway_process(opensearch_url, port=0, timeout_s=5.0, admin_key=ADMIN_KEY,
                               extra_args=["--pipeline-index", store]) as gw:
        yield gw
    httpx.delete(f"{opensearch_url}/{store}", timeout=30)


def test_native_normalization_pipeline_works_behind_the_gateway(gateway, opensearch_url, os_scifact_index) -> None:
    native, own = f"st8-cl-hybrid-{os.getpid()}", f"st8-cl-own-{os.getpid()}"
    # gzip request bodies; pipeline writes through the gateway, OpenSearch's own too, carry the admin key
    client = OpenSearch(hosts=[gateway.url], timeout=60, http_compress=True, headers=ADMIN)
    direct = opensearch_client(opensearch_url)
    assert client.info()["version"]["distribution"] == "opensearch"
    try:
        assert client.search_pipeline.put(id=native, body=NORMALIZATION) == {"acknowledged": True}
        stored = direct.search_pipeline.get(id=native)[native]  # on OpenSearch itself, not in the gateway's store
        assert stored["phase_results_processors"][0]["normalization-processor"]["normalization"]["technique"] == \
            "min_max"
        through = client.search(index=os_scifact_index, body=HYBRID, search_pipeline=native)
        expected = direct.search(index=os_scifact_index, body=HYBRID, search_pipeline=native)
        hits = through["hits"]["hits"]
        assert hits and [(h["_id"], h["_score"]) for h in hits] == [
            (h["_id"], h["_score"]) for h in expected["hits"]["hits"]]
        assert all(0.0 <= h["_score"] <= 1.0 for h in hits) and hits[0]["_score"] > hits[-1]["_score"]
        assert "searchtune" not in through

        dead = {"request_processors": [{"neural_rerank": {"endpoint": "http://127.0.0.1:9/v1/rerank", "top_k": 10}}]}
        made = httpx.put(f"{gateway.url}/_search/pipeline/{own}", json=dead, timeout=30, headers=ADMIN)
        assert made.status_code == 200 and "x-elastic-product" not in made.headers  # OpenSearch never says so
        with pytest.raises(NotFoundError):
            direct.search_pipeline.get(id=own)  # the gateway's own stays in the gateway
        assert {native, own} <= set(client.search_pipeline.get())
        fallback = client.search(index=os_scifact_index, body={"query": {"match": {"text": TEXT}}},
                                 search_pipeline=own)
        assert fallback["searchtune"]["fallback_reason"] == "connect_error"

        assert client.search_pipeline.delete(id=native) == {"acknowledged": True}
        with pytest.raises(NotFoundError):
            direct.search_pipeline.get(id=native)
        with pytest.raises(NotFoundError):
            client.search_pipeline.get(id=native)
    finally:
        httpx.delete(f"{opensearch_url}/_search/pipeline/{native}", timeout=30)
        httpx.delete(f"{gateway.url}/_search/pipeline/{own}", timeout=30)
