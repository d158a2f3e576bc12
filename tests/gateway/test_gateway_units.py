"""Unit tests of the gateway's pure parts: pipeline parsing, the query-text rule, dialect mapping, breaker, paging."""

from __future__ import annotations

import asyncio

import pytest

from searchtune.gateway.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from searchtune.gateway.pipelines import REDACTED, PipelineError, parse_pipeline, redact, resolve_headers
from searchtune.gateway.query_text import document_text, extract_query_text, searched_fields
from searchtune.rerank_client import RerankError, build_request, infer_api, parse_scores
from searchtune.gateway.rerank import filter_source, plan_request, rerank_response

GUIDE = {"description": "Neural rerank via Bailian", "request_processors": [{"neural_rerank": {
    "model_id": "custom-rerank-v1", "endpoint": "https://dashscope.example.com/api/v1/services/rerank",
    "field": "query_text", "top_k": 10, "headers": {"Authorization": "Bearer $BAILIAN_API_KEY"}}}]}
OPENSEARCH = {"response_processors": [{"rerank": {"ml_opensearch": {"model_id": "m1"},
                                                  "context": {"document_fields": ["title", "text"]}}}]}
GUIDE_QUERY = {"query": {"multi_match": {"query": "enterprise storage", "fields": ["title^2", "desc"]}}, "size": 5}


def test_guide_pipeline_parses_verbatim():
    spec = parse_pipeline("bailian-rerank", GUIDE).rerank
    assert spec.endpoint.endswith("/api/v1/services/rerank") and spec.top_k == 10
    assert spec.fields == ("query_text",) and spec.model_id == "custom-rerank-v1"
    assert spec.headers == {"Authorization": "Bearer $BAILIAN_API_KEY"}  # stored unresolved


def test_opensearch_pipeline_parses():
    spec = parse_pipeline("os", OPENSEARCH).rerank
    assert spec.endpoint is None and spec.model_id == "m1" and spec.fields == ("title", "text") and spec.top_k is None


@pytest.mark.parametrize("body, needle", [
    ({"request_processors": [{"neural_rerank": {"endpoint": "http://h/v1/rerank", "top_k": 0}}]},
     "request_processors[0].neural_rerank.top_k"),
    ({"request_processors": [{"neural_rerank": {"top_k": 3}}]}, "neural_rerank.endpoint: Field required"),
    ({"request_processors": [{"neural_rerank": {"endpoint": "http://h/unknown"}}]}, "cannot infer the API dialect"),
    ({"request_processors": [{"neural_rerank": {"endpoint": "http://h/v1/rerank", "topk": 3}}]}, "topk"),
    ({"response_processors": [{"truncate_hits": {}}]}, "processor [truncate_hits] is not supported"),
    ({"description": "nothing"}, "no processor"),
    ({"response_processors": [{"rerank": {"ml_opensearch": {"model_id": "m"}, "context": {"document_fields": []}}}]},
     "context.document_fields"),
    ([1, 2], "must be a JSON object"),
])
def test_invalid_pipelines_name_the_field(body, needle):
    with pytest.raises(PipelineError) as info:
        parse_pipeline("p", body)
    assert needle in str(info.value)


def test_headers_resolved_at_call_time_allow_listed_only_and_redacted_on_show():
    headers = {"Authorization": "Bearer $SEARCHTUNE_SECRET_BAILIAN", "X-Team": "${SEARCHTUNE_SECRET_TEAM}",
               "X-Home": "${HOME}"}
    env = {"SEARCHTUNE_SECRET_BAILIAN": "sk-1", "SEARCHTUNE_SECRET_TEAM": "search", "HOME": "/root"}
    assert resolve_headers(headers, env) == {"Authorization": "Bearer sk-1", "X-Team": "search"}  # never $HOME
    assert resolve_headers(headers, {}) == {}  # "Bearer " alone is dropped
    shown = redact({"request_processors": [{"neural_rerank": {"headers": {
        "Authorization": "Bearer sk-live", "X-Key": "$K", "Accept": "json", "X-Auth": "Bearer ${SEARCHTUNE_SECRET_A}"}}}]})
    assert shown["request_processors"][0]["neural_rerank"]["headers"] == {
        "Authorization": REDACTED, "X-Key": "$K", "Accept": REDACTED, "X-Auth": "Bearer ${SEARCHTUNE_SECRET_A}"}


def test_query_text_rule_order():
    assert extract_query_text(GUIDE_QUERY) == "enterprise storage"
    with_ext = {**GUIDE_QUERY, "ext": {"rerank": {"query_context": {"query_text": "from ext"}}}}
    assert extract_query_text(with_ext) == "from ext"
    body = {"query": {"bool": {"filter": [{"term": {"x": 1}}], "must": [{"match": {"desc": {"query": "deep"}}}]}},
            "meta": {"q": "configured"}}
    assert extract_query_text(body) == "deep"
    assert extract_query_text(body, "meta.q") == "configured"
    assert extract_query_text({"query": {"match_all": {}}}) is None
    assert searched_fields(GUIDE_QUERY) == ["title", "desc"]


def test_document_field_rule():
    source = {"title": "Disk arrays", "desc": "Enterprise storage for data centres", "price": 3}
    # the guide's field "query_text" is no document field: the multi_match fields are used, title first
    assert document_text(source, ["query_text"], ["title", "desc"]) == "Disk arrays. Enterprise storage for data centres"
    assert document_text(source, ["desc"], ["title", "desc"]) == "Enterprise storage for data centres"
    assert document_text(source, [], ["*"], " | ") == "Disk arrays | Enterprise storage for data centres | 3"
    assert document_text(source, [], []) == "Disk arrays. Enterprise storage for data centres"


@pytest.mark.parametrize("path, api", [
    ("/api/v1/services/rerank", "dashscope"), ("/api/v1/services/rerank/text-rerank/text-rerank", "dashscope"),
    ("/v1/rerank", "cohere"), ("/v2/rerank", "cohere-v2"), ("/rerank", "tei"),
    ("/v3/openapi/workspaces/default/ranker/ops-bge-reranker-larger", "alibaba")])
def test_dialect_inferred_from_path(path, api):
    assert infer_api("http://127.0.0.1:8080" + path) == api


def test_dialect_bodies_and_responses():
    docs = ["a", "b"]
    assert build_request("dashscope", "m", "q", docs) == {
        "model": "m", "input": {"query": "q", "documents": docs}, "parameters": {"top_n": 2, "return_documents": False}}
    assert build_request("cohere", None, "q", docs)["documents"] == docs
    assert build_request("tei", None, "q", docs)["texts"] == docs
    assert build_request("alibaba", None, "q", docs) == {"query": "q", "docs": docs}
    assert build_request("hf", None, "q", docs) == {"query": "q", "documents": docs}
    expected = [0.25, 0.75]
    assert parse_scores({"results": [{"index": 1, "relevance_score": 0.75}, {"index": 0, "relevance_score": 0.25}]},
                        2) == expected
    assert parse_scores({"output": {"results": [{"index": 1, "relevance_score": .75},
                                                {"index": 0, "relevance_score": .25}]}}, 2) == expected
    assert parse_scores([{"index": 1, "score": .75}, {"index": 0, "score": .25}], 2) == expected
    assert parse_scores({"result": {"scores": [{"index": 0, "score": .25}, {"index": 1, "score": .75}]}}, 2) == expected
    with pytest.raises(RerankError, match="1 of 2 documents got no score"):
        parse_scores({"results": [{"index": 0, "relevance_score": 1.0}]}, 2)
    with pytest.raises(RerankError):
        parse_scores({"code": "InvalidApiKey", "message": "no"}, 2)


def test_breaker_opens_then_half_opens():
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=5.0, clock=lambda: now[0])
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN and not breaker.allow()
    now[0] = 5.0
    assert breaker.state == HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_failure()
    assert breaker.state == OPEN
    now[0] = 10.5
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.allow()


def test_source_filter():
    source = {"title": "t", "desc": "d", "meta": {"a": 1, "b": 2}}
    assert filter_source(source, ["title", "meta.a"], []) == {"title": "t", "meta": {"a": 1}}
    assert filter_source(source, [], ["desc", "meta.b"]) == {"title": "t", "meta": {"a": 1}}


def _hits(n):
    return [{"_id": str(i), "_score": float(n - i), "_source": {"title": f"doc {i}", "desc": "x"}} for i in range(n)]


def _run(pipeline, body, params, hits, scores=None, error=None):
    upstream, start, size, window, skip = plan_request(body, params, pipeline)
    response = {"took": 3, "hits": {"total": {"value": len(hits)}, "max_score": 9.0, "hits": hits}}
    calls = []

    async def call(endpoint, api, model, query, docs, headers, timeout):
        calls.append((query, list(docs)))
        if error:
            raise error
        return scores(docs) if scores else [0.0] * len(docs)

    breaker = CircuitBreaker()
    outcome = asyncio.run(rerank_response(response, body, params, pipeline, start, size, window, skip,
                                          rerank_call=call, endpoint="http://h/v1/rerank", breaker=breaker,
                                          timeout=1.0))
    return upstream, outcome, calls


def test_window_widened_reranked_and_paged():
    pipeline = parse_pipeline("p", {"request_processors": [{"neural_rerank": {"endpoint": "http://h/v1/rerank",
                                                                              "top_k": 10}}]})
    body = {"query": {"multi_match": {"query": "q", "fields": ["title^2", "desc"]}}, "size": 3, "from": 1,
            "ext": {"rerank": {"query_context": {"query_text": "q"}}}}
    # the model prefers higher doc numbers: reversed order
    upstream, outcome, calls = _run(pipeline, body, {}, _hits(10),
                                    scores=lambda docs: [float(d.split()[1].rstrip(".")) for d in docs])
    assert upstream["from"] == 0 and upstream["size"] == 10 and "ext" not in upstream
    assert len(calls[0][1]) == 10 and calls[0][1][0] == "doc 0. x"
    hits = outcome.body["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["8", "7", "6"]  # from=1 of the reranked window
    assert hits[0]["_score"] == 8.0 and hits[0]["fields"]["_bm25_score"] == [2.0]
    assert outcome.body["searchtune"]["reranked"] is True


def test_fallback_keeps_cluster_order_with_flag():
    pipeline = parse_pipeline("p", GUIDE)
    _, outcome, _ = _run(pipeline, dict(GUIDE_QUERY), {}, _hits(10), error=RerankError("http_503", "down"))
    assert [h["_id"] for h in outcome.body["hits"]["hits"]] == ["0", "1", "2", "3", "4"]
    assert outcome.body["searchtune"] == {"pipeline": "p", "reranked": False, "window": 10,
                                          "model_id": "custom-rerank-v1", "fallback_reason": "http_503",
                                          "rerank_ms": outcome.body["searchtune"]["rerank_ms"]}


def test_fusion_weight_mixes_bm25():
    pipeline = parse_pipeline("p", {"request_processors": [{"neural_rerank": {
        "endpoint": "http://h/v1/rerank", "top_k": 3, "bm25_weight": 1.0}}]})
    _, outcome, _ = _run(pipeline, {"query": {"match": {"title": "q"}}, "size": 3}, {}, _hits(3),
                         scores=lambda docs: [0.0, 0.5, 1.0])
    assert [h["_id"] for h in outcome.body["hits"]["hits"]] == ["0", "1", "2"]  # weight 1: BM25 order wins


def test_url_size_and_source_filter_honoured():
    pipeline = parse_pipeline("p", GUIDE)
    upstream, outcome, _ = _run(pipeline, {"query": {"match": {"title": "q"}}, "_source": ["desc"]}, {"size": "2"},
                                _hits(10))
    assert upstream["_source"] is True  # the cluster must send the text the model reads
    hits = outcome.body["hits"]["hits"]
    assert len(hits) == 2 and hits[0]["_source"] == {"desc": "x"}
