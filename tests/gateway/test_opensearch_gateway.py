"""The searchtune gateway in front of the real OpenSearch node: when the model server is down, OpenSearch's native
rerank pipeline fails the whole search (HTTP 500), while the gateway's pipeline still answers with the BM25 order
and says why. Real processes throughout; the dead endpoint is a closed port on 127.0.0.1."""

from __future__ import annotations

import os
import socket

import httpx

from searchtune.search import opensearch_ml as osml
from searchtune.gateway.auth import ADMIN_KEY_HEADER
from searchtune.gateway.process import start_gateway_process

ADMIN_KEY = f"st8-admin-{os.getpid()}"

QUERY = {"query": {"multi_match": {"query": "cancer cells tumour", "fields": ["title", "text"]}}, "size": 10}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gateway_falls_back_where_opensearch_fails(opensearch_url, os_rerank_server, os_scifact_index) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    name, native = f"st8-gw-{os.getpid()}", f"st8-gw-native-{os.getpid()}"
    pipeline_index = f"st8-gw-pipelines-{os.getpid()}"
    plain = httpx.post(f"{opensearch_url}/{os_scifact_index}/_search", json=QUERY, timeout=60).json()["hits"]["hits"]
    try:
        osml.connect(opensearch_url, dead, native, name=name)
        body = {**QUERY, "ext": {"rerank": {"query_context": {"query_text": "cancer cells tumour"}}}}
        direct = httpx.post(f"{opensearch_url}/{os_scifact_index}/_search", params={"search_pipeline": native},
                            json=body, timeout=60)
        assert direct.status_code == 500
        assert "Error communicating with remote model: Connection refused" in direct.json()["error"]["reason"]

        with start_gateway_process(opensearch_url, port=0, timeout_s=5.0, admin_key=ADMIN_KEY,
                                   extra_args=["--pipeline-index", pipeline_index]) as gateway, \
                httpx.Client(base_url=gateway.url, timeout=60, headers={ADMIN_KEY_HEADER: ADMIN_KEY}) as http:
            assert http.get("/").json()["version"]["distribution"] == "opensearch"  # plain proxying
            for pipe, endpoint in (("st8-gw-dead", dead), ("st8-gw-live", os_rerank_server.url)):
                spec = {"request_processors": [{"neural_rerank": {"endpoint": f"{endpoint}/v1/rerank", "top_k": 10}}]}
                assert http.put(f"/_search/pipeline/{pipe}", json=spec).status_code == 200
            fallback = http.post(f"/{os_scifact_index}/_search", params={"search_pipeline": "st8-gw-dead"}, json=QUERY)
            assert fallback.status_code == 200
            assert [h["_id"] for h in fallback.json()["hits"]["hits"]] == [h["_id"] for h in plain]
            assert fallback.json()["searchtune"]["reranked"] is False
            assert fallback.json()["searchtune"]["fallback_reason"] == "connect_error"
            live = http.post(f"/{os_scifact_index}/_search", params={"search_pipeline": "st8-gw-live"}, json=QUERY)
            assert live.status_code == 200 and live.json()["searchtune"]["reranked"] is True
            assert {h["_id"] for h in live.json()["hits"]["hits"]} == {h["_id"] for h in plain}
            for pipe in ("st8-gw-dead", "st8-gw-live"):
                http.delete(f"/_search/pipeline/{pipe}")
    finally:
        osml.delete(opensearch_url, native, name=name)
        httpx.delete(f"{opensearch_url}/{pipeline_index}", timeout=30)
