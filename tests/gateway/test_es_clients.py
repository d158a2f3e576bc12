"""Unmodified elasticsearch-py applications through the gateway (a real subprocess) in front of the real
Elasticsearch node, with the real model server behind it: start-up checks (``ping``/``info``), a fresh client whose
first call is pipeline admin, ``http_compress=True`` for pipeline search, admin and ``_msearch``, default pipelines
reached through an alias, a wildcard and index lists, and the ``X-Searchtune-Pipeline`` header."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import httpx
import pytest
from elasticsearch import Elasticsearch

from searchtune.gateway.auth import ADMIN_KEY_HEADER
from searchtune.gateway.process import start_gateway_process

ADMIN_KEY = "t-cl-admin-" + uuid.uuid4().hex  # pipeline admin needs the gateway's admin key (issue 12)
JSON = {"content-type": "application/json", "accept": "application/json", ADMIN_KEY_HEADER: ADMIN_KEY}
QUERY = {"multi_match": {"query": "cancer cells tumour growth", "fields": ["title", "text"]}}
TAG = uuid.uuid4().hex[:8]
BOOKS, SHELF, EXTRA = f"t-cl-books-{TAG}", f"t-cl-shelf-{TAG}", f"t-cl-extra-{TAG}"


@pytest.fixture(scope="module")
def indices(es: Elasticsearch, scifact_dir: Path):
    """``BOOKS`` (reachable through the alias ``SHELF``) and ``EXTRA``, real SciFact documents."""
    operations = []
    with open(scifact_dir / "corpus.jsonl") as handle:
        for n, line in zip(range(400), handle):
            row = json.loads(line)
            target = BOOKS if n % 2 else EXTRA
            operations += [{"index": {"_index": target, "_id": row["_id"]}},
                           {"title": row.get("title", ""), "text": row["text"][:600]}]
    for name in (BOOKS, EXTRA):
        es.indices.create(index=name, settings={"number_of_shards": 1, "number_of_replicas": 0})
    es.bulk(operations=operations, refresh=True)
    es.indices.put_alias(index=BOOKS, name=SHELF)
    yield
    es.indices.delete(index=f"{BOOKS},{EXTRA}", ignore_unavailable=True)


@pytest.fixture(scope="module")
def model_server(base_model_path: str):
    from searchtune.serve.process import start_server_process

    server = start_server_process(base_model_path, port=0, backend="torch",
                                  extra_args=["--max-length", "128", "--precision", "fp32"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(es: Elasticsearch, es_url: str):
    store = f"t-cl-pipelines-{TAG}"
    with start_gateway_process(es_url, port=0, timeout_s=60.0, admin_key=ADMIN_KEY,
                               extra_args=["--pipeline-index", store]) as handle:
        yield handle
    es.indices.delete(index=store, ignore_unavailable=True)


@pytest.fixture(scope="module")
def pipeline(gateway, model_server) -> dict:
    return {"request_processors": [{"neural_rerank": {"endpoint": f"{model_server.url}/v1/rerank", "top_k": 10,
                                                       "timeout_ms": 60000}}]}


def _reranked_by(answer, name: str) -> bool:
    meta = answer.get("searchtune") or {}
    assert not meta or meta.get("reranked"), meta  # when a pipeline applies, the live model must have reranked
    return meta.get("pipeline") == name


def test_start_up_checks_work_through_the_gateway(gateway, es: Elasticsearch) -> None:
    client = Elasticsearch(gateway.url, request_timeout=30)
    assert client.ping() is True
    info = client.info()
    node = next(iter(es.nodes.info(node_id="_local")["nodes"].values()))
    assert info["version"]["number"] == node["version"]
    assert info["cluster_name"] == es.cluster.health()["cluster_name"] and info["name"] == node["name"]
    head = httpx.head(gateway.url + "/", timeout=30)
    assert head.status_code == 200 and head.headers["x-elastic-product"] == "Elasticsearch"
    assert not Elasticsearch("http://127.0.0.1:9", request_timeout=2, max_retries=0).ping()  # ping can say no


def test_fresh_compressed_client_whose_first_call_is_pipeline_admin(gateway, pipeline) -> None:
    name = f"t-cl-admin-{TAG}"
    client = Elasticsearch(gateway.url, http_compress=True, request_timeout=30)
    assert client.perform_request("PUT", f"/_search/pipeline/{name}", body=pipeline, headers=JSON).body == {
        "acknowledged": True}
    shown = client.perform_request("GET", f"/_search/pipeline/{name}", headers=JSON).body
    assert shown[name]["request_processors"][0]["neural_rerank"]["top_k"] == 10  # the decoded body was stored
    assert client.perform_request("DELETE", f"/_search/pipeline/{name}", headers=JSON).body == {"acknowledged": True}
    broken = httpx.put(f"{gateway.url}/_search/pipeline/{name}", content=b"\x1f\x8b not gzip",
                       headers={"content-type": "application/json", "content-encoding": "gzip",
                                ADMIN_KEY_HEADER: ADMIN_KEY}, timeout=30)
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "parse_exception"


def test_compressed_pipeline_search_msearch_and_header(gateway, pipeline, indices) -> None:
    name = f"t-cl-gzip-{TAG}"
    client = Elasticsearch(gateway.url, http_compress=True, request_timeout=120)
    client.perform_request("PUT", f"/_search/pipeline/{name}", body=pipeline, headers=JSON)
    try:
        answer = client.perform_request("POST", f"/{BOOKS}/_search", params={"search_pipeline": name},
                                        body={"query": QUERY, "size": 5}, headers=JSON).body
        assert _reranked_by(answer, name) and len(answer["hits"]["hits"]) == 5
        plain = client.search(index=BOOKS, query=QUERY, size=10)
        assert "searchtune" not in plain
        assert {h["_id"] for h in answer["hits"]["hits"]} <= {h["_id"] for h in plain["hits"]["hits"]}
        picked = client.options(headers={"X-Searchtune-Pipeline": name}).search(index=BOOKS, query=QUERY, size=5)
        assert _reranked_by(picked, name)
        assert [h["_id"] for h in picked["hits"]["hits"]] == [h["_id"] for h in answer["hits"]["hits"]]
        many = client.options(headers={"X-Searchtune-Pipeline": name}).msearch(
            searches=[{"index": BOOKS}, {"query": QUERY, "size": 5}, {"index": EXTRA}, {"query": QUERY, "size": 3}])
        assert [_reranked_by(r, name) for r in many["responses"]] == [True, True]
        assert [h["_id"] for h in many["responses"][0]["hits"]["hits"]] == [h["_id"] for h in answer["hits"]["hits"]]
        raw = gzip.compress(b'{"index": "%s"}\n{"query": {"match": {"text": "tumour"}}}\n' % BOOKS.encode())
        direct = httpx.post(f"{gateway.url}/_msearch", params={"search_pipeline": name}, content=raw, timeout=120,
                            headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"})
        assert direct.status_code == 200 and _reranked_by(direct.json()["responses"][0], name)
    finally:
        client.perform_request("DELETE", f"/_search/pipeline/{name}", headers=JSON)


def test_default_pipeline_follows_the_clusters_resolution(gateway, pipeline, indices) -> None:
    """A default set on the alias applies to searches through the alias, through a wildcard matching it and to
    ``_msearch`` on it; a list of indices gets it only when every index agrees."""
    name, other = f"t-cl-default-{TAG}", f"t-cl-other-{TAG}"
    client = Elasticsearch(gateway.url, request_timeout=120)
    for pipe in (name, other):
        client.perform_request("PUT", f"/_search/pipeline/{pipe}", body=pipeline, headers=JSON)
    client.perform_request("PUT", f"/_searchtune/default_pipeline/{SHELF}", body={"pipeline": name}, headers=JSON)
    try:
        assert _reranked_by(client.search(index=SHELF, query=QUERY, size=5), name)
        assert _reranked_by(client.search(index=f"t-cl-shelf-{TAG[:4]}*", query=QUERY, size=5), name)
        assert "searchtune" not in client.search(index=f"t-cl-books-{TAG[:4]}*", query=QUERY, size=5)  # not via it
        found = client.msearch(searches=[{"index": SHELF}, {"query": QUERY, "size": 4}, {"index": EXTRA},
                                         {"query": QUERY, "size": 4}])
        assert [_reranked_by(r, name) for r in found["responses"]] == [True, False]
        assert "searchtune" not in client.search(index=[SHELF, EXTRA], query=QUERY, size=5)  # EXTRA has none
        client.perform_request("PUT", f"/_searchtune/default_pipeline/{EXTRA}", body={"pipeline": name}, headers=JSON)
        assert _reranked_by(client.search(index=[SHELF, EXTRA], query=QUERY, size=5), name)
        client.perform_request("PUT", f"/_searchtune/default_pipeline/{EXTRA}", body={"pipeline": other},
                               headers=JSON)
        assert "searchtune" not in client.search(index=f"{SHELF},{EXTRA}", query=QUERY, size=5)  # they disagree
        assert _reranked_by(client.search(index=EXTRA, query=QUERY, size=5), other)
    finally:
        for target in (SHELF, EXTRA):
            httpx.delete(f"{gateway.url}/_searchtune/default_pipeline/{target}", timeout=30)
        for pipe in (name, other):
            client.perform_request("DELETE", f"/_search/pipeline/{pipe}", headers=JSON)
