"""The gateway as a real subprocess in front of the real Elasticsearch, with the real model server behind it.

Covers the vendor guide's flow verbatim (PUT bailian-rerank, GET /catalog/_search?search_pipeline=bailian-rerank),
fallback when the model server dies, pipelines shared between two gateway processes, plain proxying for
elasticsearch-py and curl-like clients, secrets never stored resolved.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from elasticsearch import Elasticsearch

from searchtune.gateway.auth import ADMIN_KEY_HEADER
from searchtune.gateway.process import start_gateway_process

GUIDE_PIPELINE = {"description": "Neural rerank via Bailian", "request_processors": [{"neural_rerank": {
    "model_id": "custom-rerank-v1", "endpoint": "https://.../api/v1/services/rerank", "field": "query_text",
    "top_k": 10, "headers": {"Authorization": "Bearer $BAILIAN_API_KEY"}}}]}
GUIDE_QUERY = {"query": {"multi_match": {"query": "enterprise storage", "fields": ["title^2", "desc"]}}, "size": 5}
SECRET = "sk-t-gw-" + uuid.uuid4().hex  # the gateway's BAILIAN_API_KEY; must never reach the cluster or a GET
ADMIN_KEY = "t-gw-admin-" + uuid.uuid4().hex
ADMIN = {ADMIN_KEY_HEADER: ADMIN_KEY}  # pipeline writes need the gateway's admin key

#: A small product catalog (the guide's scenario): several documents match "enterprise storage" in BM25.
PRODUCTS = [
    ("Enterprise storage array X9", "All-flash storage for enterprise databases with inline deduplication."),
    ("Storage shelf", "A metal shelf for home storage of boxes and tools."),
    ("Enterprise backup appliance", "Backup and recovery appliance with 200 TB of storage for enterprise data."),
    ("Cold storage bag", "Insulated storage bag keeps food cold for picnics."),
    ("NAS for small offices", "Network attached storage with four drive bays; not intended for enterprise scale."),
    ("Enterprise storage software", "Software-defined storage that pools disks across enterprise servers."),
    ("Enterprise support plan", "24/7 enterprise support for all hardware products."),
    ("Object storage gateway", "S3-compatible object storage gateway for enterprise data lakes."),
    ("Storage ottoman", "A velvet ottoman with hidden storage space for blankets."),
    ("Tape library", "LTO tape library for long-term enterprise archival storage."),
    ("Enterprise storage controller", "Dual-controller storage head with NVMe for enterprise workloads."),
    ("Garden storage shed", "Wooden shed for garden storage of tools."),
]


def _catalog_docs(scifact_dir: Path, filler: int = 150) -> list[dict]:
    """The products plus real scifact documents as filler (title -> title, text -> desc)."""
    docs = [{"title": t, "desc": d} for t, d in PRODUCTS]
    with open(scifact_dir / "corpus.jsonl") as handle:
        for _, line in zip(range(filler), handle):
            row = json.loads(line)
            docs.append({"title": row.get("title", ""), "desc": row.get("text", "")[:400]})
    return docs


@pytest.fixture(scope="module")
def catalog(es: Elasticsearch, scifact_dir: Path):
    """Index ``t-gw-catalog-<hex>`` reachable as ``catalog`` (an alias, removed after) when that name is free."""
    index = f"t-gw-catalog-{uuid.uuid4().hex[:8]}"
    es.indices.create(index=index, settings={"number_of_shards": 1, "number_of_replicas": 0},
                      mappings={"properties": {"title": {"type": "text"}, "desc": {"type": "text"}}})
    operations = []
    for i, doc in enumerate(_catalog_docs(scifact_dir)):
        operations += [{"index": {"_index": index, "_id": f"p{i}"}}, doc]
    es.bulk(operations=operations, refresh=True)
    name = index
    if not es.indices.exists_alias(name="catalog") and not es.indices.exists(index="catalog"):
        es.indices.put_alias(index=index, name="catalog")
        name = "catalog"
    yield name
    es.indices.delete(index=index, ignore_unavailable=True)


@pytest.fixture(scope="module")
def model_server(base_model_path: str):
    from searchtune.serve.process import start_server_process

    # torch fp32: the same numerics as the in-process scorer the parity test compares with (auto may pick ONNX int8)
    server = start_server_process(base_model_path, port=0, api_key=SECRET, backend="torch",
                                  env={"SEARCHTUNE_SERVE_MODEL_NAMES": "custom-rerank-v1,t-gw-m1"},  # pipelines' model_id
                                  extra_args=["--max-length", "128", "--precision", "fp32"])
    yield server
    server.stop()


def _gateway(es_url: str, pipeline_index: str, *extra: str):
    """The guide's ``$BAILIAN_API_KEY`` is allowed by adding its prefix to the default one (``--secret-prefix``)."""
    return start_gateway_process(es_url, port=0, timeout_s=5.0,
                                 extra_args=["--pipeline-index", pipeline_index, "--breaker-failures", "2",
                                             "--breaker-reset", "30", "--secret-prefix", "SEARCHTUNE_SECRET_",
                                             "--secret-prefix", "BAILIAN_", *extra],
                                 env={"BAILIAN_API_KEY": SECRET, "SEARCHTUNE_GATEWAY_ADMIN_KEY": ADMIN_KEY})


@pytest.fixture(scope="module")
def gateway(es_url: str, pipeline_index: str):
    with _gateway(es_url, pipeline_index) as handle:
        yield handle


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_plain_requests_are_proxied_for_elasticsearch_py(gateway, es, catalog):
    """Same answers through the gateway as direct, headers passed both ways, writes work, HEAD works."""
    client = Elasticsearch(gateway.url, request_timeout=30)
    body = {"query": {"match": {"desc": "storage"}}, "size": 5}
    direct = es.search(index=catalog, **body)
    proxied = client.search(index=catalog, **body)
    assert [h["_id"] for h in proxied["hits"]["hits"]] == [h["_id"] for h in direct["hits"]["hits"]]
    assert client.indices.exists(index=catalog) and not client.indices.exists(index="t-gw-missing-index")
    assert client.count(index=catalog)["count"] == es.count(index=catalog)["count"] > 100
    client.index(index=catalog, id="t-gw-new", document={"title": "New", "desc": "added through the gateway"},
                 refresh=True)
    assert es.get(index=catalog, id="t-gw-new")["_source"]["title"] == "New"
    es.delete(index=catalog, id="t-gw-new", refresh=True)
    with httpx.Client(base_url=gateway.url) as http:
        r = http.get(f"/{catalog}/_search", params={"size": 1}, headers={"X-Opaque-Id": "t-gw-opaque",
                                                                         "Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["x-opaque-id"] == "t-gw-opaque"
        assert r.headers.get("x-elastic-product") == "Elasticsearch"
        assert r.json()["hits"]["hits"]  # gzip passed through raw and decodable
        missing = http.get("/t-gw-missing-index/_search")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "index_not_found_exception"


def test_pipeline_validation_and_secrets(gateway, es, pipeline_index):
    with httpx.Client(base_url=gateway.url, headers=ADMIN) as http:
        bad = http.put("/_search/pipeline/t-gw-bad", json={"request_processors": [{"neural_rerank": {
            "endpoint": "http://127.0.0.1:1/v1/rerank", "top_k": -1}}]})
        assert bad.status_code == 400 and "request_processors[0].neural_rerank.top_k" in bad.text
        # the guide's placeholder host is not an allowed endpoint (loopback only by default)
        refused = http.put("/_search/pipeline/t-gw-secret", json=GUIDE_PIPELINE)
        assert refused.status_code == 400 and "request_processors[0].neural_rerank.endpoint" in refused.text
        local = json.loads(json.dumps(GUIDE_PIPELINE))
        local["request_processors"][0]["neural_rerank"]["endpoint"] = "http://127.0.0.1:1/api/v1/services/rerank"
        assert http.put("/_search/pipeline/t-gw-secret", json=local).json() == {"acknowledged": True}
        shown = http.get("/_search/pipeline/t-gw-secret")
        assert shown.json()["t-gw-secret"] == local  # the $VAR reference, verbatim
        assert SECRET not in shown.text
        stored = es.get(index=pipeline_index, id="pipeline:t-gw-secret")
        assert SECRET not in json.dumps(stored.body) and "$BAILIAN_API_KEY" in json.dumps(stored.body)
        assert http.delete("/_search/pipeline/t-gw-secret").json() == {"acknowledged": True}
        assert http.get("/_search/pipeline/t-gw-secret").status_code == 404
        assert http.get(f"/{'x'}/_search", params={"search_pipeline": "t-gw-nope"}).status_code == 404


def test_dead_endpoint_falls_back_with_flag_then_opens_circuit(gateway, es, catalog):
    dead = {"request_processors": [{"neural_rerank": {"endpoint": "http://127.0.0.1:9/v1/rerank", "top_k": 10}}]}
    direct = es.search(index=catalog, **GUIDE_QUERY)
    with httpx.Client(base_url=gateway.url, timeout=30, headers=ADMIN) as http:
        assert http.put("/_search/pipeline/t-gw-dead", json=dead).status_code == 200
        reasons = []
        for _ in range(3):
            r = http.post(f"/{catalog}/_search", params={"search_pipeline": "t-gw-dead"}, json=GUIDE_QUERY)
            assert r.status_code == 200
            assert [h["_id"] for h in r.json()["hits"]["hits"]] == [h["_id"] for h in direct["hits"]["hits"]]
            reasons.append(r.json()["searchtune"]["fallback_reason"])
        assert reasons == ["connect_error", "connect_error", "circuit_open"]  # breaker-failures=2
        everywhere = http.post("/_search", params={"search_pipeline": "t-gw-dead"}, json=GUIDE_QUERY)
        assert everywhere.status_code == 200 and everywhere.json()["searchtune"]["fallback_reason"] == "circuit_open"
        metrics = http.get("/metrics").text
        assert _metric(metrics, "searchtune_gateway_fallback_total", pipeline="t-gw-dead") == 4
        assert _metric(metrics, "searchtune_gateway_breaker_open") == 1
        # a per-index default pipeline applies without search_pipeline; _none opts out
        assert http.put(f"/_searchtune/default_pipeline/{catalog}", json={"pipeline": "t-gw-dead"}).status_code == 200
        assert http.post(f"/{catalog}/_search", json=GUIDE_QUERY).json()["searchtune"]["pipeline"] == "t-gw-dead"
        opted_out = http.post(f"/{catalog}/_search", params={"search_pipeline": "_none"}, json=GUIDE_QUERY)
        assert opted_out.status_code == 200 and "searchtune" not in opted_out.json()
        assert [h["_id"] for h in opted_out.json()["hits"]["hits"]] == [h["_id"] for h in direct["hits"]["hits"]]
        assert http.delete(f"/_searchtune/default_pipeline/{catalog}").status_code == 200
        http.delete("/_search/pipeline/t-gw-dead")


def test_authorization_passes_through(model_server, pipeline_index):
    """The local cluster runs without security, so the gateway is put in front of another real server that checks
    bearer keys (the model server): Authorization must reach it unchanged, and its 401 must come back unchanged."""
    with _gateway(model_server.url, pipeline_index) as front:
        assert httpx.get(f"{front.url}/v1/models", timeout=30).status_code == 401
        ok = httpx.get(f"{front.url}/v1/models", headers={"Authorization": f"Bearer {SECRET}"}, timeout=30)
        assert ok.status_code == 200 and ok.json()["data"]


def test_msearch_through_gateway_matches_in_process_rerank(gateway, model_server, es, es_url, scifact_dir,
                                                           base_model_path):
    """BM25 eval code (elasticsearch-py msearch) pointed at the gateway, with a default pipeline on the index,
    gives the same reranked NDCG@10 as reranking in-process with the same model (real SciFact subset)."""
    from searchtune.data.records import Document, Query
    from searchtune.eval.metrics import evaluate
    from searchtune.eval.rerank import rerank_run, with_tail
    from searchtune.scoring import load_scorer
    from searchtune.search.retrieval import bm25_search

    qrels: dict[str, dict[str, int]] = {}
    for line in (scifact_dir / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, grade = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(grade)
    texts = {row["_id"]: row["text"] for row in map(json.loads, (scifact_dir / "queries.jsonl").open())}
    queries = {qid: Query(id=qid, text=texts[qid]) for qid in list(qrels)[:8]}
    wanted = {did for qid in queries for did in qrels[qid]}
    index = f"t-gw-scifact-{uuid.uuid4().hex[:8]}"
    operations = []
    with open(scifact_dir / "corpus.jsonl") as handle:
        for n, line in enumerate(handle):
            row = json.loads(line)
            if n < 300 or row["_id"] in wanted:
                operations += [{"index": {"_index": index, "_id": row["_id"]}},
                               {"title": row.get("title", ""), "text": row["text"]}]
    es.indices.create(index=index, settings={"number_of_shards": 1, "number_of_replicas": 0})
    try:
        es.bulk(operations=operations, refresh=True)
        top_k, page = 10, 30  # the page is longer than the rerank window: the tail keeps BM25's order, as offline
        run, docs = bm25_search(es, index, queries, ["title", "text"], top_k=page, with_source=True)
        scorer = load_scorer(base_model_path, precision="fp32", max_length=128)
        in_process = evaluate({q: qrels[q] for q in queries}, with_tail(rerank_run(scorer, queries, run, docs, top_k),
                                                                          run)).aggregate

        pipeline = {"request_processors": [{"neural_rerank": {
            "endpoint": f"{model_server.url}/v1/rerank", "top_k": top_k, "timeout_ms": 60000,
            "headers": {"Authorization": "Bearer $BAILIAN_API_KEY"}}}]}
        with httpx.Client(base_url=gateway.url, timeout=60, headers=ADMIN) as http:
            assert http.put("/_search/pipeline/t-gw-eval", json=pipeline).status_code == 200
            assert http.put(f"/_searchtune/default_pipeline/{index}", json={"pipeline": "t-gw-eval"}).status_code == 200
        through = Elasticsearch(gateway.url, request_timeout=120)
        gateway_run, gateway_docs = bm25_search(through, index, queries, ["title", "text"], top_k=page,
                                                with_source=True)
        assert set(gateway_docs) == set(docs)  # the client's _source filter still applied
        assert isinstance(next(iter(gateway_docs.values())), Document)
        for qid in queries:  # same candidates, the window reordered, the rest in BM25's order below it
            assert set(gateway_run[qid]) == set(run[qid])
            ranked = sorted(gateway_run[qid], key=gateway_run[qid].get, reverse=True)
            bm25_ranked = sorted(run[qid], key=run[qid].get, reverse=True)
            assert set(ranked[:top_k]) == set(bm25_ranked[:top_k]) and ranked[top_k:] == bm25_ranked[top_k:]
        through_gateway = evaluate({q: qrels[q] for q in queries}, gateway_run).aggregate
        for metric, value in in_process.items():
            assert through_gateway[metric] == pytest.approx(value, abs=1e-3), metric
        bm25_only = evaluate({q: qrels[q] for q in queries}, run).aggregate
        assert any(abs(bm25_only[m] - in_process[m]) > 1e-6 for m in in_process)  # the rerank did change the ranking
    finally:
        httpx.delete(f"{gateway.url}/_searchtune/default_pipeline/{index}", headers=ADMIN)
        httpx.delete(f"{gateway.url}/_search/pipeline/t-gw-eval", headers=ADMIN)
        es.indices.delete(index=index, ignore_unavailable=True)


def test_vendor_guide_flow_end_to_end(gateway, model_server, es, es_url, catalog, pipeline_index):
    """The guide verbatim (endpoint pointed at our server), reranked; model killed -> cluster order + flag;
    a second gateway process sees the pipeline created through the first."""
    pipeline = json.loads(json.dumps(GUIDE_PIPELINE))
    pipeline["request_processors"][0]["neural_rerank"]["endpoint"] = f"{model_server.url}/api/v1/services/rerank"
    direct = es.search(index=catalog, **{**GUIDE_QUERY, "size": 10})
    with httpx.Client(base_url=gateway.url, timeout=60, headers=ADMIN) as http:
        assert http.put("/_search/pipeline/bailian-rerank", json=pipeline).json() == {"acknowledged": True}
        r = http.request("GET", f"/{catalog}/_search?search_pipeline=bailian-rerank", json=GUIDE_QUERY)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["searchtune"]["reranked"] is True, answer["searchtune"]
        hits = answer["hits"]["hits"]
        assert len(hits) == 5

        # the model's own scores for the top-10 window (title + desc, the multi_match fields), asked directly
        window = direct["hits"]["hits"]
        texts = [f"{h['_source']['title']}. {h['_source']['desc']}" for h in window]
        scored = httpx.post(f"{model_server.url}/v1/rerank", headers={"Authorization": f"Bearer {SECRET}"},
                            json={"query": "enterprise storage", "documents": texts}, timeout=60).json()
        model = {window[row["index"]]["_id"]: row["relevance_score"] for row in scored["results"]}
        expected = sorted(model, key=lambda d: -model[d])[:5]
        assert [h["_id"] for h in hits] == expected
        assert expected != [h["_id"] for h in window[:5]]  # the model does reorder this catalog
        bm25 = {h["_id"]: h["_score"] for h in window}
        for hit in hits:
            assert hit["_score"] == pytest.approx(model[hit["_id"]], abs=1e-4)
            assert hit["fields"]["_bm25_score"] == [pytest.approx(bm25[hit["_id"]])]

        # OpenSearch's shape names a model, not a URL: this gateway has no model map, so it falls back
        opensearch = {"response_processors": [{"rerank": {"ml_opensearch": {
            "model_id": "t-gw-m1", "headers": {"Authorization": "Bearer ${BAILIAN_API_KEY}"}},
                                                          "context": {"document_fields": ["title", "desc"]}}}]}
        assert http.put("/_search/pipeline/t-gw-os", json=opensearch).status_code == 200
        os_query = {**GUIDE_QUERY, "size": 10,
                    "ext": {"rerank": {"query_context": {"query_text": "enterprise storage"}}}}
        unknown = http.post(f"/{catalog}/_search", params={"search_pipeline": "t-gw-os"}, json=os_query).json()
        assert unknown["searchtune"]["fallback_reason"] == "unknown_model"

        # a second replica, with a model map, reads both pipelines from the cluster
        with _gateway(es_url, pipeline_index, "--model", f"t-gw-m1={model_server.url}/v1/rerank") as second:
            shown = httpx.get(f"{second.url}/_search/pipeline/bailian-rerank").json()
            assert shown["bailian-rerank"]["request_processors"][0]["neural_rerank"]["top_k"] == 10
            again = httpx.post(f"{second.url}/{catalog}/_search", params={"search_pipeline": "bailian-rerank"},
                               json=GUIDE_QUERY, timeout=60).json()
            assert [h["_id"] for h in again["hits"]["hits"]] == expected
            by_model = httpx.post(f"{second.url}/{catalog}/_search", params={"search_pipeline": "t-gw-os"},
                                  json=os_query, timeout=60).json()
            assert by_model["searchtune"]["reranked"] is True, by_model["searchtune"]
            assert [h["_id"] for h in by_model["hits"]["hits"]][:5] == expected  # same texts, same model

        # kill the model server (SIGKILL): the cluster's order, the flag, no error
        model_server.process.kill()
        model_server.process.wait(10)
        r = http.request("GET", f"/{catalog}/_search?search_pipeline=bailian-rerank", json=GUIDE_QUERY)
        assert r.status_code == 200
        fallback = r.json()
        assert fallback["searchtune"]["reranked"] is False and fallback["searchtune"]["fallback_reason"]
        assert [h["_id"] for h in fallback["hits"]["hits"]] == [h["_id"] for h in window[:5]]
        metrics = http.get("/metrics").text
        assert _metric(metrics, "searchtune_gateway_rerank_total", pipeline="bailian-rerank", outcome="reranked") == 1
        assert _metric(metrics, "searchtune_gateway_fallback_total", pipeline="bailian-rerank") == 1
        http.delete("/_search/pipeline/bailian-rerank")
        http.delete("/_search/pipeline/t-gw-os")
