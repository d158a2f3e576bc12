"""TEI routes and options over real HTTP (issue 16): options are honoured or refused, never ignored."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest

TEXTS = ["A study of vitamin D and bone health.", "Stock markets fell on Tuesday.", "Hip fracture prevention."]
LONG = " ".join(["bone"] * 300)  # ~300 tokens > max_length 128


@pytest.fixture(scope="module")
def emb(emb_server):
    with httpx.Client(base_url=emb_server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def ce(ce_server, api_key):
    with httpx.Client(base_url=ce_server.url, timeout=60, headers={"Authorization": f"Bearer {api_key}"}) as c:
        yield c


@pytest.fixture(scope="module")
def st(base_model_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(base_model_path, device="cpu")
    model.max_seq_length = 128
    return model


def test_embed_normalize_false_returns_the_pooled_vector(emb, st) -> None:
    from sentence_transformers import SentenceTransformer

    raw_model = SentenceTransformer(modules=[st[0], st[1]], device="cpu")  # without the Normalize module
    expected = raw_model.encode(TEXTS)
    rows = np.array(emb.post("/embed", json={"inputs": TEXTS, "normalize": False}).json())
    assert np.allclose(rows, expected, atol=1e-4) and abs(np.linalg.norm(rows[0]) - 1) > 0.1
    unit = np.array(emb.post("/embed", json={"inputs": TEXTS}).json())
    assert np.allclose(np.linalg.norm(unit, axis=1), 1, atol=1e-5)


def test_truncate_false_over_the_limit_is_413_and_default_truncates(emb, ce) -> None:
    refused = emb.post("/embed", json={"inputs": ["short", LONG], "truncate": False})
    assert refused.status_code == 413
    body = refused.json()
    assert (body["code"], body["limit"], body["max"], body["index"]) == ("InputTooLong", "max_length", 128, 1)
    assert body["actual"] > 128 and body["error_type"] == "validation"
    assert emb.post("/embed", json={"inputs": ["short", LONG]}).status_code == 200
    assert ce.post("/rerank", json={"query": "q", "texts": [LONG], "truncate": False}).status_code == 413
    assert ce.post("/rerank", json={"query": "q", "texts": [LONG], "truncate": True}).status_code == 200
    cohere = emb.post("/v2/embed", json={"texts": [LONG], "input_type": "search_query", "truncate": "NONE"})
    assert cohere.status_code == 413


def test_dimensions_only_for_matryoshka_models(emb, mrl_server, st) -> None:
    refused = emb.post("/embed", json={"inputs": TEXTS, "dimensions": 64})
    assert refused.status_code == 400 and "Matryoshka" in refused.json()["message"]
    with httpx.Client(base_url=mrl_server.url, timeout=60) as mrl:
        rows = np.array(mrl.post("/embed", json={"inputs": TEXTS, "dimensions": 64}).json())
        full = st.encode(TEXTS, normalize_embeddings=True)[:, :64]
        assert rows.shape == (3, 64) and np.allclose(rows, full / np.linalg.norm(full, axis=1, keepdims=True),
                                                     atol=1e-4)
        assert mrl.post("/embed", json={"inputs": TEXTS, "dimensions": 1000}).status_code == 400
        cohere = mrl.post("/v2/embed", json={"texts": TEXTS, "input_type": "search_document",
                                             "output_dimension": 128, "embedding_types": ["float"]}).json()
        assert np.array(cohere["embeddings"]["float"]).shape == (3, 128)
        info = mrl.get("/v1/models").json()["data"][0]
        assert info["matryoshka"] is True and info["matryoshka_dims"] == [384, 256, 128, 64]


def test_info_similarity_embed_all_and_prompts(emb, ce, st) -> None:
    info = emb.get("/info").json()
    assert "embedding" in info["model_type"] and info["max_input_length"] == 128
    assert "reranker" in ce.get("/info").json()["model_type"]
    vectors = st.encode(TEXTS, normalize_embeddings=True)
    sims = emb.post("/similarity", json={"inputs": {"source_sentence": TEXTS[0], "sentences": TEXTS}}).json()
    assert sims == pytest.approx((vectors @ vectors[0]).tolist(), abs=1e-4)
    tokens = emb.post("/embed_all", json={"inputs": TEXTS[:2]}).json()
    expected = st.encode(TEXTS[:2], output_value="token_embeddings")
    assert [len(t) for t in tokens] == [len(e) for e in expected]
    assert np.allclose(np.array(tokens[0]), expected[0].numpy(), atol=1e-4)
    unknown = emb.post("/embed", json={"inputs": "x", "prompt_name": "nope"})
    assert unknown.status_code == 400 and "prompt_name" in unknown.json()["message"]
    assert emb.post("/embed", json={"inputs": "x", "prompt_name": "query"}).status_code == 200


def test_rerank_raw_scores_and_predict_on_a_cross_encoder(ce) -> None:
    rows = ce.post("/rerank", json={"query": "vitamin d", "texts": TEXTS}).json()
    raw = ce.post("/rerank", json={"query": "vitamin d", "texts": TEXTS, "raw_scores": True}).json()
    by = {r["index"]: r["score"] for r in rows}
    for r in raw:
        assert 1 / (1 + math.exp(-r["score"])) == pytest.approx(by[r["index"]], abs=1e-6)
    single = ce.post("/predict", json={"inputs": ["vitamin d", TEXTS[0]]}).json()  # one pair
    assert isinstance(single, list) and single[0]["label"] == "LABEL_0"
    assert single[0]["score"] == pytest.approx(by[0], abs=1e-4)
    batch = ce.post("/predict", json={"inputs": [["vitamin d", t] for t in TEXTS], "raw_scores": True}).json()
    assert [b[0]["score"] for b in batch] == pytest.approx([{r["index"]: r["score"] for r in raw}[i]
                                                            for i in range(3)], abs=1e-4)
    root = ce.post("/", json={"query": "vitamin d", "texts": TEXTS}).json()  # POST / reranks on a reranker
    assert {r["index"]: r["score"] for r in root} == pytest.approx(by, abs=1e-6)
    assert ce.post("/embed", json={"inputs": "x"}).status_code == 400  # a cross-encoder has no embeddings


def test_cohere_and_dashscope_scores_are_0_to_1_for_an_embedding_model(emb, st) -> None:
    vectors = st.encode(["vitamin d bones", *TEXTS], normalize_embeddings=True)
    cosine = vectors[1:] @ vectors[0]
    results = emb.post("/v2/rerank", json={"query": "vitamin d bones", "documents": TEXTS}).json()["results"]
    got = {r["index"]: r["relevance_score"] for r in results}
    assert [got[i] for i in range(3)] == pytest.approx(((1 + cosine) / 2).tolist(), abs=1e-4)
    dash = emb.post("/api/v1/services/rerank/text-rerank/text-rerank",
                    json={"input": {"query": "vitamin d bones", "documents": TEXTS}}).json()
    assert all(0 <= r["relevance_score"] <= 1 for r in dash["output"]["results"])
    tei = emb.post("/rerank", json={"query": "vitamin d bones", "texts": TEXTS}).json()
    assert {r["index"]: r["score"] for r in tei} == pytest.approx(dict(enumerate(cosine.tolist())), abs=1e-4)
