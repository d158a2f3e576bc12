"""Embedding routes, and reranking by cosine with an embedding model, over real HTTP (all-MiniLM-L6-v2)."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

TEXTS = ["A study of vitamin D and bone health.", "Stock markets fell on Tuesday.", "Hip fracture prevention."]


@pytest.fixture(scope="module")
def client(emb_server):
    with httpx.Client(base_url=emb_server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def reference(base_model_path: str) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(base_model_path, device="cpu")
    model.max_seq_length = 128
    return model.encode(TEXTS, normalize_embeddings=True)


def test_openai_embeddings(client, reference) -> None:
    body = client.post("/v1/embeddings", json={"model": "minilm", "input": TEXTS}).json()
    assert body["object"] == "list" and body["model"] == "minilm"
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" for d in body["data"])
    vectors = np.array([d["embedding"] for d in body["data"]])
    assert vectors.shape == (3, 384)
    assert np.allclose(vectors, reference, atol=1e-4)
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 3
    single = client.post("/v1/embeddings", json={"input": TEXTS[0], "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(single["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, reference[0], atol=1e-4)
    assert client.post("/v1/embeddings", json={"input": 3}).status_code == 422
    assert client.post("/v1/embeddings", json={"input": ["a"], "encoding_format": "int4"}).status_code == 422


def test_tei_embed_and_elasticsearch_hugging_face_inputs(client, reference) -> None:
    rows = client.post("/embed", json={"inputs": TEXTS}).json()
    assert isinstance(rows, list) and np.allclose(np.array(rows), reference, atol=1e-4)
    one = client.post("/embed", json={"inputs": TEXTS[1]}).json()
    assert len(one) == 1 and np.allclose(one[0], reference[1], atol=1e-4)
    assert client.post("/embed", json={"texts": TEXTS}).status_code == 422


def test_alibaba_text_embedding(client, reference) -> None:
    body = client.post("/v3/openapi/workspaces/default/text-embedding/ops-text-embedding-001",
                       json={"input": TEXTS, "input_type": "document"}).json()
    assert set(body) == {"request_id", "latency", "usage", "result"}
    embeddings = body["result"]["embeddings"]
    assert [e["index"] for e in embeddings] == [0, 1, 2]
    assert np.allclose(np.array([e["embedding"] for e in embeddings]), reference, atol=1e-4)


def test_rerank_with_an_embedding_model_scores_by_cosine(client, reference, base_model_path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(base_model_path, device="cpu")
    model.max_seq_length = 128
    query = "vitamin d bones"
    q = model.encode([query], normalize_embeddings=True)[0]
    expected = (reference @ q).tolist()
    rows = client.post("/rerank", json={"query": query, "documents": TEXTS}).json()
    assert all(set(r) == {"index", "score"} for r in rows) and len(rows) == 3
    got = {r["index"]: r["score"] for r in rows}
    assert [got[i] for i in range(3)] == pytest.approx(expected, abs=1e-4)
    cohere = client.post("/v2/rerank", json={"query": query, "documents": TEXTS}).json()
    assert [r["index"] for r in cohere["results"]] == [r["index"] for r in rows]
    model_info = client.get("/v1/models").json()["data"][0]
    assert model_info["kind"] == "embedding" and model_info["backend"] == "torch"
