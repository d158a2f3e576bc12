"""Pure fusion and kNN-request functions (no node needed): the arithmetic the gateway and evaluation share."""

from __future__ import annotations

import pytest

from searchtune.vectors.fusion import Fusion, fuse, fuse_runs, page
from searchtune.vectors.knn import bm25_body, es_knn_body, knn_filter, opensearch_knn_body

BM25 = [("a", 10.0), ("b", 6.0), ("c", 2.0)]
KNN = [("c", 0.9), ("d", 0.8), ("a", 0.5)]


def test_linear_fusion_min_max_normalises_each_side_and_weights_knn():
    hits = {h.id: h for h in fuse(BM25, KNN, Fusion("linear", weight=0.25))}
    # bm25 norm: a=1, b=0.5, c=0; knn norm: c=1, d=0.75, a=0
    assert hits["a"].score == pytest.approx(0.75)
    assert hits["b"].score == pytest.approx(0.375)
    assert hits["c"].score == pytest.approx(0.25)
    assert hits["d"].score == pytest.approx(0.1875)
    assert (hits["d"].bm25_score, hits["d"].knn_score, hits["d"].knn_rank) == (None, 0.8, 2)
    assert [h.id for h in fuse(BM25, KNN, Fusion("linear", weight=0.25))] == ["a", "b", "c", "d"]


def test_weight_extremes_give_each_side_alone():
    assert [h.id for h in fuse(BM25, KNN, Fusion("linear", weight=0.0))][:3] == ["a", "b", "c"]
    assert [h.id for h in fuse(BM25, KNN, Fusion("linear", weight=1.0))][:3] == ["c", "d", "a"]


def test_rrf_uses_ranks_only():
    hits = {h.id: h.score for h in fuse(BM25, KNN, Fusion("rrf", rank_constant=1))}
    assert hits["a"] == pytest.approx(1 / 2 + 1 / 4)
    assert hits["c"] == pytest.approx(1 / 4 + 1 / 2)
    assert hits["d"] == pytest.approx(1 / 3)
    # a and c tie: the BM25 rank breaks it
    assert [h.id for h in fuse(BM25, KNN, Fusion("rrf", rank_constant=1))][:2] == ["a", "c"]


def test_bad_fusion_settings_are_refused():
    with pytest.raises(ValueError, match="weight"):
        Fusion("linear", weight=1.5)
    with pytest.raises(ValueError, match="rank_constant"):
        Fusion("rrf", rank_constant=0)
    with pytest.raises(ValueError, match="method"):
        Fusion("max")


def test_paging_and_runs():
    hits = fuse(BM25, KNN, Fusion("linear", weight=0.25))
    assert [h.id for h in page(hits, 1, 2)] == ["b", "c"]
    assert page(hits, 10, 5) == []
    run = fuse_runs({"q": dict(BM25)}, {"q": dict(KNN), "q2": {"x": 1.0}}, Fusion("linear", 0.25), depth=2)
    assert list(run["q"]) == ["a", "b"] and list(run["q2"]) == ["x"]


def test_bool_filters_and_must_not_go_to_the_knn_side():
    query = {"bool": {"must": [{"match": {"text": "cells"}}], "filter": {"term": {"lang": "en"}},
                      "must_not": [{"ids": {"values": ["x"]}}], "should": [{"match": {"title": "cells"}}]}}
    assert knn_filter(query) == {"bool": {"filter": [{"term": {"lang": "en"}}],
                                          "must_not": [{"ids": {"values": ["x"]}}]}}
    assert knn_filter({"multi_match": {"query": "x"}}) is None
    assert knn_filter({"bool": {"must": {"match": {"t": "x"}}}}) is None
    assert knn_filter({"constant_score": {"filter": {"term": {"a": 1}}}}) == {"bool": {"filter": [{"term": {"a": 1}}]}}


def test_request_bodies_keep_the_application_query_and_hit_shape():
    body = {"query": {"bool": {"must": {"match": {"text": "q"}}, "filter": [{"term": {"y": 1}}]}},
            "from": 20, "size": 5, "_source": ["title"]}
    side = bm25_body(body, 100)
    assert side["size"] == 100 and "from" not in side and side["query"] == body["query"]
    knn = es_knn_body(body, [0.1, 0.2], "embedding", k=100, num_candidates=50)
    assert knn["knn"] == {"field": "embedding", "query_vector": [0.1, 0.2], "k": 100, "num_candidates": 100,
                          "filter": {"bool": {"filter": [{"term": {"y": 1}}]}}}
    assert knn["_source"] == ["title"] and knn["size"] == 100 and "query" not in knn
    os_knn = opensearch_knn_body(body, [0.1], "embedding", k=10)
    assert os_knn["query"]["knn"]["embedding"]["filter"] == {"bool": {"filter": [{"term": {"y": 1}}]}}
    assert body["from"] == 20  # the application's body is not modified
