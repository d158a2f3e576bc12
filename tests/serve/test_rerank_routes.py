"""Every rerank route over real HTTP against a real cross-encoder served by a real `searchtune serve` process."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

QUERY = "does vitamin d reduce the risk of fractures"
DOCS = [
    "Vitamin D supplementation and fracture risk in older adults: a randomized trial.",
    "The price of tea in China rose sharply last year.",
    "Calcium and vitamin D for the prevention of hip fractures.",
    "Deep learning for image segmentation.",
    "Bone mineral density after vitamin D treatment.",
]


@pytest.fixture(scope="module")
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture(scope="module")
def client(ce_server, auth):
    with httpx.Client(base_url=ce_server.url, headers=auth, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def reference_scores(cross_encoder_dir: str) -> list[float]:
    """The same model in-process (fp32, max_length 128): what every route must return, index by index."""
    from searchtune.scoring import load_scorer

    return load_scorer(cross_encoder_dir, precision="fp32", device="cpu", max_length=128).score(QUERY, DOCS)


def by_index(rows: list[dict], key: str) -> list[float]:
    out = [None] * len(DOCS)
    for row in rows:
        out[row["index"]] = row[key]
    return out


def assert_sorted(rows: list[dict], key: str) -> None:
    scores = [r[key] for r in rows]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("path,version", [("/v1/rerank", "1"), ("/v2/rerank", "2")])
def test_cohere_rerank(client, reference_scores, path: str, version: str) -> None:
    body = client.post(path, json={"model": "gte-rerank", "query": QUERY, "documents": DOCS}).json()
    assert set(body) == {"id", "results", "meta"}
    assert body["meta"]["api_version"]["version"] == version
    assert body["meta"]["tokens"]["input_tokens"] > len(DOCS)
    assert all(set(r) == {"index", "relevance_score"} for r in body["results"])
    assert by_index(body["results"], "relevance_score") == pytest.approx(reference_scores, abs=1e-4)
    assert_sorted(body["results"], "relevance_score")
    # documents as {text} objects, top_n and return_documents
    docs = [{"text": d} for d in DOCS]
    top = client.post(path, json={"query": QUERY, "documents": docs, "top_n": 2, "return_documents": True}).json()
    assert len(top["results"]) == 2
    assert top["results"] == [{"index": r["index"], "relevance_score": pytest.approx(r["relevance_score"], abs=1e-4),
                               "document": {"text": DOCS[r["index"]]}} for r in body["results"][:2]]


def test_dashscope_rerank(client, reference_scores) -> None:
    payload = {"model": "gte-rerank", "input": {"query": QUERY, "documents": DOCS},
               "parameters": {"return_documents": True, "top_n": 3}}
    body = client.post("/api/v1/services/rerank/text-rerank/text-rerank", json=payload).json()
    assert set(body) == {"output", "usage", "request_id"}
    assert body["usage"]["total_tokens"] > 0
    results = body["output"]["results"]
    assert len(results) == 3 and all(set(r) == {"index", "relevance_score", "document"} for r in results)
    assert_sorted(results, "relevance_score")
    full = client.post("/api/v1/services/rerank/text-rerank/text-rerank",
                       json={"input": {"query": QUERY, "documents": DOCS}}).json()
    assert by_index(full["output"]["results"], "relevance_score") == pytest.approx(reference_scores, abs=1e-4)


@pytest.mark.parametrize("field", ["texts", "documents"])
def test_hf_rerank_is_a_top_level_array_of_index_and_score_only(client, reference_scores, field: str) -> None:
    rows = client.post("/rerank", json={"query": QUERY, field: DOCS}).json()
    assert isinstance(rows, list) and len(rows) == len(DOCS)
    assert all(set(r) == {"index", "score"} for r in rows)  # Elasticsearch rejects any other key
    assert by_index(rows, "score") == pytest.approx(reference_scores, abs=1e-4)
    assert_sorted(rows, "score")
    with_text = client.post("/rerank", json={"query": QUERY, field: DOCS, "return_text": True, "top_n": 1}).json()
    assert len(with_text) == 1 and with_text[0]["text"] == DOCS[with_text[0]["index"]]


def test_alibaba_ranker_scores_hold_only_index_and_score(client, reference_scores) -> None:
    body = client.post("/v3/openapi/workspaces/default/ranker/ops-bge-reranker-larger",
                       json={"query": QUERY, "docs": DOCS}).json()
    assert set(body) == {"request_id", "latency", "usage", "result"}
    assert body["usage"] == {"doc_count": len(DOCS)}
    scores = body["result"]["scores"]
    assert all(set(s) == {"index", "score"} for s in scores)
    assert by_index(scores, "score") == pytest.approx(reference_scores, abs=1e-4)


def test_empty_document_list_returns_empty_results(client) -> None:
    assert client.post("/rerank", json={"query": QUERY, "texts": []}).json() == []
    assert client.post("/v2/rerank", json={"query": QUERY, "documents": []}).json()["results"] == []


def test_api_keys(ce_server, api_key, auth) -> None:
    with httpx.Client(base_url=ce_server.url, timeout=30) as c:
        missing = c.post("/rerank", json={"query": "q", "texts": ["a"]})
        assert missing.status_code == 401 and missing.json()["code"] == "Unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = c.post("/rerank", json={"query": "q", "texts": ["a"]}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and wrong.json()["code"] == "Forbidden"
        basic = c.get("/v1/models", headers={"Authorization": f"Basic {api_key}"})
        assert basic.status_code == 401  # only the Bearer scheme counts
        assert c.get("/v1/models").status_code == 401
        assert c.get("/v1/models", headers=auth).status_code == 200
        for open_path in ("/health", "/ready", "/metrics", "/openapi.json"):
            assert c.get(open_path).status_code == 200, open_path


@pytest.mark.parametrize("content,needle", [
    (b"{not json", "JSON"),
    (json.dumps({"texts": ["a"]}).encode(), "query"),
    (json.dumps({"query": "q", "texts": "not a list"}).encode(), "texts"),
    (json.dumps({"query": "q", "texts": ["a"], "documents": ["b"]}).encode(), "exactly one"),
    (json.dumps({"query": "q"}).encode(), "exactly one"),
    (json.dumps({"query": "q", "texts": ["a"], "top_n": 0}).encode(), "top_n"),
])
def test_malformed_bodies_are_422_with_a_json_error(client, content: bytes, needle: str) -> None:
    response = client.post("/rerank", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "InvalidParameter" and "request_id" in body
    assert needle in body["message"] or needle in json.dumps(body["errors"])


def test_malformed_bodies_on_other_routes(client) -> None:
    assert client.post("/v2/rerank", json={"query": "q", "documents": [{"title": "no text"}]}).status_code == 422
    assert client.post("/api/v1/services/rerank/text-rerank/text-rerank",
                       json={"model": "m", "input": {"query": "q"}}).status_code == 422
    assert client.post("/v3/openapi/workspaces/w/ranker/s", json={"query": "q", "docs": [1, {"a": 2}]}).status_code == 422


def test_oversize_requests_are_413_naming_the_limit(client) -> None:
    too_many = client.post("/rerank", json={"query": "q", "texts": ["doc"] * 21})
    assert too_many.status_code == 413
    assert too_many.json()["limit"] == "max_documents" and too_many.json()["max"] == 20
    too_long = client.post("/v2/rerank", json={"query": "q", "documents": ["ok", "x" * 2001]})
    assert too_long.status_code == 413
    assert too_long.json()["limit"] == "max_document_chars" and too_long.json()["index"] == 1
    too_big = client.post("/rerank", json={"query": "q", "texts": ["y" * 70_000]})
    assert too_big.status_code == 413 and too_big.json()["limit"] == "max_body_bytes"
    # a chunked body with no content-length is cut off while streaming
    def chunks():
        for _ in range(40):
            yield b" " * 4096
    streamed = client.post("/rerank", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["limit"] == "max_body_bytes"


def metric_value(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_long_inputs_are_truncated_and_counted_not_refused(client) -> None:
    before = metric_value(client.get("/metrics").text, "searchtune_truncations_total")
    long_doc = " ".join(["bone"] * 250)  # ~250 tokens > max_length 128, under the 2000-char limit
    rows = client.post("/rerank", json={"query": QUERY, "texts": [long_doc, "short"]}).json()
    assert len(rows) == 2
    after = metric_value(client.get("/metrics").text, "searchtune_truncations_total")
    assert after - before == 1


def test_metrics_models_and_docs(client) -> None:
    client.post("/rerank", json={"query": QUERY, "texts": DOCS})
    text = client.get("/metrics").text
    assert metric_value(text, 'searchtune_requests_total{route="/rerank",status="200"}'.split("{")[0]) > 0
    for name in ("searchtune_request_latency_seconds_bucket", "searchtune_batch_size_count",
                 "searchtune_queue_depth", "searchtune_input_tokens_total", "searchtune_truncations_total"):
        assert name in text, name
    assert metric_value(text, "searchtune_batch_size_count") > 0
    model = client.get("/v1/models").json()["data"][0]
    assert (model["kind"], model["backend"], model["precision"], model["max_length"]) == \
        ("cross-encoder", "torch", "fp32", 128)
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/v1/rerank", "/v2/rerank", "/rerank", "/api/v1/services/rerank/text-rerank/text-rerank",
                  "/v3/openapi/workspaces/{workspace}/ranker/{service_id}", "/v1/embeddings", "/embed",
                  "/v3/openapi/workspaces/{workspace}/text-embedding/{service_id}", "/v1/models"):
        assert route in paths, route
    assert client.get("/docs").status_code == 200


def test_embeddings_on_a_cross_encoder_are_a_clear_400(client) -> None:
    response = client.post("/v1/embeddings", json={"input": ["a"]})
    assert response.status_code == 400 and response.json()["code"] == "UnsupportedModelKind"


def test_concurrent_requests_are_batched_and_each_gets_its_own_scores(ce_server, auth, reference_scores) -> None:
    async def main() -> list:
        async with httpx.AsyncClient(base_url=ce_server.url, headers=auth, timeout=60) as c:
            # each request rotates the documents, so a mix-up between callers would show
            calls = [c.post("/rerank", json={"query": QUERY, "texts": DOCS[k:] + DOCS[:k]})
                     for k in range(len(DOCS)) for _ in range(3)]
            return await asyncio.gather(*calls)

    responses = asyncio.run(main())
    for n, response in enumerate(responses):
        k = n // 3
        expected = reference_scores[k:] + reference_scores[:k]
        rows = response.json()
        assert [s for s in by_index(rows, "score")] == pytest.approx(expected, abs=1e-4)
