"""The same `hybrid` gateway pipeline in front of the managed OpenSearch node: vectors in a `knn_vector` field (k-NN
plugin, Lucene engine) built by the same builder, the kNN side sent as OpenSearch's `knn` query with the bool
filters, fused in the gateway; BM25 order with the reason when the endpoint is gone."""

from __future__ import annotations

import uuid

import httpx
import pytest

from searchtune.data import load_dataset
from searchtune.gateway.auth import ADMIN_KEY_HEADER
from searchtune.gateway.process import start_gateway_process
from searchtune.search.client import opensearch_client
from searchtune.vectors.build import build_vector_index
from searchtune.vectors.mapping import read_vector_meta

from .conftest import MAX_LENGTH


@pytest.fixture(scope="module")
def os_vec_index(opensearch_url, vec_dataset, embedder):
    client = opensearch_client(opensearch_url)
    ds = load_dataset(vec_dataset)
    alias = f"t-osvec-{uuid.uuid4().hex[:6]}"
    result = build_vector_index(client, alias, ds.corpus.values(), embedder, total=len(ds.corpus))
    assert result.count == len(ds.corpus)
    yield alias
    client.indices.delete(index=f"{alias}-*", ignore_unavailable=True)


def test_hybrid_pipeline_in_front_of_opensearch(opensearch_url, os_vec_index, vec_dataset, base_model_path):
    from searchtune.serve.process import start_server_process

    client = opensearch_client(opensearch_url)
    meta = read_vector_meta(dict(client.indices.get_mapping(index=os_vec_index)))
    assert meta["index_type"] == "lucene_hnsw" and meta["dims"] == 384
    physical = next(iter(client.indices.get_mapping(index=os_vec_index)))
    assert client.indices.get_mapping(index=physical)[physical]["mappings"]["properties"]["embedding"]["type"] == \
        "knn_vector"
    ds = load_dataset(vec_dataset)
    allowed = sorted(ds.corpus)[:30]
    server = start_server_process(base_model_path, port=0, backend="torch",
                                  extra_args=["--max-length", str(MAX_LENGTH), "--precision", "fp32"])
    pipelines = f"t-osvec-pipelines-{uuid.uuid4().hex[:6]}"
    try:
        admin_key = uuid.uuid4().hex  # pipeline writes need the gateway's admin key
        with start_gateway_process(opensearch_url, port=0, timeout_s=5.0, admin_key=admin_key,
                                   extra_args=["--pipeline-index", pipelines]) as gateway, \
                httpx.Client(base_url=gateway.url, timeout=60, headers={ADMIN_KEY_HEADER: admin_key}) as http:
            definition = {"request_processors": [{"hybrid": {"endpoint": f"{server.url}/v1/embeddings", "k": 30,
                                                             "fusion": {"method": "linear", "weight": 0.5}}}]}
            assert http.put("/_search/pipeline/t-os-hybrid", json=definition).status_code == 200
            differ = 0
            for query in list(ds.split_queries("test").values())[:8]:
                body = {"query": {"multi_match": {"query": query.text, "fields": ["title", "text"]}}, "size": 10}
                bm25 = [h["_id"] for h in client.search(index=os_vec_index, body=body)["hits"]["hits"]]
                answer = http.post(f"/{os_vec_index}/_search?search_pipeline=t-os-hybrid", json=body).json()
                assert answer["searchtune"]["hybrid"] is True, answer["searchtune"]
                differ += [h["_id"] for h in answer["hits"]["hits"]] != bm25
            assert differ
            filtered = {"query": {"bool": {"must": {"match": {"text": "cancer"}}, "filter": {"terms": {"id": allowed}}}},
                        "size": 20}
            answer = http.post(f"/{os_vec_index}/_search?search_pipeline=t-os-hybrid", json=filtered).json()
            ids = [h["_id"] for h in answer["hits"]["hits"]]
            assert answer["searchtune"]["hybrid"] is True and ids and set(ids) <= set(allowed)
            assert any(h["fields"]["_bm25_score"] == [None] for h in answer["hits"]["hits"])  # kNN-only hits
            server.stop()
            body = {"query": {"match": {"text": "insulin"}}, "size": 10}
            down = http.post(f"/{os_vec_index}/_search?search_pipeline=t-os-hybrid", json=body)
            assert down.status_code == 200 and down.json()["searchtune"]["fallback_reason"] == "connect_error"
            assert [h["_id"] for h in down.json()["hits"]["hits"]] == \
                [h["_id"] for h in client.search(index=os_vec_index, body=body)["hits"]["hits"]]
    finally:
        server.stop()
        client.indices.delete(index=pipelines, ignore_unavailable=True)
