"""Vectors in a real Elasticsearch node: built by `searchtune index --vectors`, searched with kNN, fused with BM25
(the alias swap under load and rollback are in test_hybrid_gateway.py, through the gateway)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data import load_dataset
from searchtune.eval.hybrid import es_knn_run
from searchtune.search.retrieval import bm25_search
from searchtune.vectors.fusion import Fusion, fuse_runs
from searchtune.vectors.identity import model_fingerprint
from searchtune.vectors.knn import bm25_body, es_knn_body
from searchtune.vectors.mapping import read_vector_meta
from searchtune.vectors.versions import live_index


def test_index_holds_a_vector_per_document_and_records_the_model(es, vec_index, vec_dataset, base_model_path):
    ds = load_dataset(vec_dataset)
    physical = live_index(es, vec_index)
    assert physical != vec_index  # the searched name is an alias
    meta = read_vector_meta(dict(es.indices.get_mapping(index=vec_index)))
    assert meta["field"] == "embedding" and meta["dims"] == 384 and meta["similarity"] == "cosine"
    assert meta["index_type"] == "int8_hnsw" and meta["max_length"] == 128
    assert meta["model"]["fingerprint"] == model_fingerprint(base_model_path)
    mapping = es.indices.get_mapping(index=vec_index)[physical]["mappings"]["properties"]["embedding"]
    assert mapping["type"] == "dense_vector" and mapping["dims"] == 384
    with_vectors = es.count(index=vec_index, query={"exists": {"field": "embedding"}})["count"]
    assert with_vectors == len(ds.corpus)


def test_hybrid_finds_judged_documents_bm25_missed(es, vec_index, vec_dataset, embedder):
    ds = load_dataset(vec_dataset)
    queries, qrels = ds.split_queries("test"), ds.split_qrels("test")
    bm25, _ = bm25_search(es, vec_index, queries, top_k=50)
    knn = es_knn_run(es, vec_index, "embedding", embedder, queries, k=50, num_candidates=100)
    assert len(knn.latencies_ms) == len(queries)
    fused = fuse_runs(bm25, knn.run, Fusion("linear", weight=0.5), depth=10)
    top10 = {q: set(list(dict(sorted(bm25[q].items(), key=lambda kv: -kv[1])))[:10]) for q in queries}
    assert any(list(fused[q]) != sorted(bm25[q], key=lambda d: -bm25[q][d])[:10] for q in queries)
    rescued = {q: (set(fused[q]) - top10[q]) & set(qrels[q]) for q in queries}
    assert any(rescued.values()), "hybrid top-10 holds no judged document that BM25's top-10 lacks"


def test_knn_side_honours_the_bool_filters(es, vec_index, vec_dataset, embedder):
    ds = load_dataset(vec_dataset)
    allowed = sorted(ds.corpus)[:40]
    banned = allowed[0]
    body = {"query": {"bool": {"must": {"match": {"text": "cancer cells"}},
                               "filter": [{"terms": {"id": allowed}}], "must_not": [{"ids": {"values": [banned]}}]}}}
    vector = embedder.embed(["cancer cells"])[0].tolist()
    knn_hits = es.search(index=vec_index, **es_knn_body(body, vector, "embedding", k=20, num_candidates=50))
    ids = [h["_id"] for h in knn_hits["hits"]["hits"]]
    assert ids and set(ids) <= set(allowed) - {banned}
    unfiltered = es.search(index=vec_index, **es_knn_body({}, vector, "embedding", k=20, num_candidates=50))
    assert {h["_id"] for h in unfiltered["hits"]["hits"]} - set(allowed)  # the filter did restrict something
    assert es.search(index=vec_index, **bm25_body(body, 5))["hits"]["hits"]


def test_eval_hybrid_reports_fusion_and_latency(vec_index, vec_dataset, base_model_path, es_url, tmp_path):
    out = tmp_path / "hybrid.json"
    result = CliRunner().invoke(app, ["eval", str(vec_dataset), "--index", vec_index, "--split", "test",
                                      "--hybrid", base_model_path, "--max-length", "128", "--tune-fusion",
                                      "--dev-split", "train", "--json", str(out), "--es-url", es_url])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["hybrid"]["knn"] == "es"  # the index's vectors come from this very model
    assert set(payload["latency_ms"]) >= {"p50", "p95", "p99"} and payload["latency_ms"]["count"] == 20
    assert payload["latency_ms"]["p50"] <= payload["latency_ms"]["p99"]
    tuned = payload["hybrid"]["tuned"]
    assert tuned["on"] == "train" and 0.0 <= payload["hybrid"]["fusion"]["weight"] <= 1.0
    systems = payload["systems"]
    hybrid = next(name for name in systems if name.startswith("hybrid linear"))
    assert systems[hybrid]["metrics"]["NDCG@10"] != systems["BM25"]["metrics"]["NDCG@10"]
