"""The real client SDKs, unmodified, against real `searchtune serve` processes (issue 16): cohere (ClientV2 and
v1 Client), openai, dashscope, huggingface_hub InferenceClient and langchain-cohere. Each result is checked
against the same model run in-process, so a wrong route, shape or score mapping fails here."""

from __future__ import annotations

import base64

import numpy as np
import pytest

QUERY = "does vitamin d reduce the risk of fractures"
DOCS = ["Vitamin D supplementation and fracture risk in older adults.", "The price of tea in China rose.",
        "Calcium and vitamin D for the prevention of hip fractures."]


@pytest.fixture(scope="module")
def st_model(base_model_path: str):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(base_model_path, device="cpu")
    model.max_seq_length = 128
    return model


@pytest.fixture(scope="module")
def ref_vectors(st_model) -> np.ndarray:
    return st_model.encode(DOCS, normalize_embeddings=True)


@pytest.fixture(scope="module")
def ce_reference(cross_encoder_dir: str) -> list[float]:
    from searchtune.scoring import load_scorer

    return load_scorer(cross_encoder_dir, precision="fp32", device="cpu", max_length=128).score(QUERY, DOCS)


def in_input_order(results, key: str = "relevance_score") -> list[float]:
    out = [0.0] * len(DOCS)
    for r in results:
        out[r.index if hasattr(r, "index") else r["index"]] = getattr(r, key) if hasattr(r, key) else r[key]
    return out


# ------------------------------------------------------------------------------------------- cohere
def test_cohere_v2_rerank_and_embed(ce_server, emb_server, api_key, ce_reference, ref_vectors) -> None:
    import cohere

    rr = cohere.ClientV2(api_key=api_key, base_url=ce_server.url).rerank(model="gte-rerank", query=QUERY,
                                                                        documents=DOCS, top_n=3)
    assert in_input_order(rr.results) == pytest.approx(ce_reference, abs=1e-4)
    assert all(0 <= r.relevance_score <= 1 for r in rr.results)
    client = cohere.ClientV2(api_key="unused", base_url=emb_server.url)
    emb = client.embed(model="minilm", texts=DOCS, input_type="search_document", embedding_types=["float", "int8"])
    floats = np.array(emb.embeddings.float_)
    assert np.allclose(floats, ref_vectors, atol=1e-4)
    int8 = np.array(emb.embeddings.int8, dtype=np.float64)
    assert int8.min() >= -128 and int8.max() <= 127 and np.abs(int8).max() > 20
    cos = (int8 * floats).sum(1) / np.linalg.norm(int8, axis=1)
    assert cos.min() > 0.99  # int8 keeps the direction
    with pytest.raises(cohere.errors.NotFoundError):
        client.embed(model="no-such-model", texts=DOCS, input_type="search_query", embedding_types=["float"])


def test_cohere_v1_rerank_with_rank_fields_and_embed(ce_server, emb_server, api_key, ce_reference,
                                                     ref_vectors) -> None:
    import cohere

    client = cohere.Client(api_key=api_key, base_url=ce_server.url)
    plain = client.rerank(query=QUERY, documents=DOCS)
    assert in_input_order(plain.results) == pytest.approx(ce_reference, abs=1e-4)
    docs = [{"title": f"t{i}", "body": d} for i, d in enumerate(DOCS)]
    fielded = client.rerank(query=QUERY, documents=docs, rank_fields=["body"], return_documents=True)
    assert in_input_order(fielded.results) == pytest.approx(ce_reference, abs=1e-4)  # scored on "body" only
    assert {r.document.text for r in fielded.results} == set(DOCS)
    assert {getattr(r.document, "title") for r in fielded.results} == {"t0", "t1", "t2"}
    emb = cohere.Client(api_key="unused", base_url=emb_server.url).embed(texts=DOCS, model="minilm",
                                                                       input_type="search_document")
    assert np.allclose(np.array(emb.embeddings), ref_vectors, atol=1e-4)


# ------------------------------------------------------------------------------------------- openai
def test_openai_embeddings_float_base64_and_errors(emb_server, ref_vectors) -> None:
    import openai

    client = openai.OpenAI(api_key="unused", base_url=f"{emb_server.url}/v1")
    default = client.embeddings.create(model="minilm", input=DOCS)  # the SDK asks for base64 and decodes it
    assert np.allclose(np.array([d.embedding for d in default.data]), ref_vectors, atol=1e-4)
    floats = client.embeddings.create(model="minilm", input=DOCS, encoding_format="float")
    assert np.allclose(np.array([d.embedding for d in floats.data]), ref_vectors, atol=1e-4)
    out = client.embeddings.create(model="minilm", input=DOCS, encoding_format="base64")  # returned as sent
    decoded = [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in out.data]
    assert np.allclose(np.array(decoded), ref_vectors, atol=1e-4)
    assert out.usage.prompt_tokens > len(DOCS)
    with pytest.raises(openai.BadRequestError, match="Matryoshka"):
        client.embeddings.create(model="minilm", input=DOCS, dimensions=128)
    with pytest.raises(openai.NotFoundError, match="not served"):
        client.embeddings.create(model="text-embedding-3-small", input=DOCS)


def test_openai_dimensions_and_token_ids_on_a_matryoshka_model(mrl_server, st_model, ref_vectors) -> None:
    import openai

    client = openai.OpenAI(api_key="unused", base_url=f"{mrl_server.url}/v1")
    out = client.embeddings.create(model="minilm-mrl", input=DOCS, dimensions=128)
    got = np.array([d.embedding for d in out.data])
    expected = ref_vectors[:, :128] / np.linalg.norm(ref_vectors[:, :128], axis=1, keepdims=True)
    assert got.shape == (3, 128) and np.allclose(got, expected, atol=1e-4)
    ids = st_model.tokenizer(DOCS[0], add_special_tokens=False)["input_ids"]
    by_ids = client.embeddings.create(model="minilm-mrl", input=[ids], encoding_format="float")
    assert np.allclose(by_ids.data[0].embedding, ref_vectors[0], atol=1e-4)
    with pytest.raises(openai.BadRequestError, match="vocabulary"):
        client.embeddings.create(model="minilm-mrl", input=[[10**7]])


# ------------------------------------------------------------------------------------------- dashscope
def test_dashscope_rerank_and_text_embedding(ce_server, emb_server, api_key, ce_reference, ref_vectors,
                                             monkeypatch) -> None:
    import dashscope

    monkeypatch.setattr(dashscope, "base_http_api_url", f"{ce_server.url}/api/v1")
    rr = dashscope.TextReRank.call(model="gte-rerank", query=QUERY, documents=DOCS, api_key=api_key)
    assert rr.status_code == 200, rr
    assert in_input_order(rr.output["results"]) == pytest.approx(ce_reference, abs=1e-4)
    monkeypatch.setattr(dashscope, "base_http_api_url", f"{emb_server.url}/api/v1")
    emb = dashscope.TextEmbedding.call(model="minilm", input=DOCS, text_type="document", api_key="unused")
    assert emb.status_code == 200, emb
    rows = sorted(emb.output["embeddings"], key=lambda e: e["text_index"])
    assert np.allclose(np.array([r["embedding"] for r in rows]), ref_vectors, atol=1e-4)
    missing = dashscope.TextEmbedding.call(model="text-embedding-v4", input=DOCS, api_key="unused")
    assert missing.status_code == 404 and missing.code == "ModelNotFound"


# ------------------------------------------------------------------------------------------- huggingface_hub
@pytest.fixture()
def hub_online(monkeypatch):
    from huggingface_hub import constants
    from huggingface_hub.utils import reset_sessions

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    reset_sessions()  # sessions are cached with the offline adapter mounted
    yield
    monkeypatch.undo()
    reset_sessions()


def test_huggingface_inference_client_on_the_server_root(ce_server, emb_server, api_key, st_model,
                                                         ref_vectors, ce_reference, hub_online) -> None:
    """The suite runs with HF_HUB_OFFLINE=1 (models load by path), which makes huggingface_hub refuse every
    request, our loopback server's too; it is lifted for this test only (nothing here can reach the Hub: the
    client is given the server's 127.0.0.1 URL)."""
    from huggingface_hub import InferenceClient

    emb = InferenceClient(model=emb_server.url)
    vector = emb.feature_extraction(DOCS[0])
    assert np.allclose(np.asarray(vector).reshape(-1), ref_vectors[0], atol=1e-4)
    sims = emb.sentence_similarity(DOCS[0], other_sentences=DOCS)
    assert sims == pytest.approx((ref_vectors @ ref_vectors[0]).tolist(), abs=1e-4)
    ce = InferenceClient(model=ce_server.url, token=api_key)
    labels = ce.text_classification(f"{QUERY} {DOCS[0]}")
    assert len(labels) == 1 and labels[0].label == "LABEL_0" and 0 <= labels[0].score <= 1


# ------------------------------------------------------------------------------------------- langchain
def test_langchain_cohere_rerank_and_embeddings(ce_server, emb_server, api_key, ce_reference,
                                                ref_vectors, st_model) -> None:
    from langchain_cohere import CohereEmbeddings, CohereRerank

    rerank = CohereRerank(base_url=ce_server.url, cohere_api_key=api_key, model="gte-rerank", top_n=3)
    rows = rerank.rerank(documents=DOCS, query=QUERY)
    assert in_input_order(rows) == pytest.approx(ce_reference, abs=1e-4)
    embeddings = CohereEmbeddings(base_url=emb_server.url, cohere_api_key="unused", model="minilm")
    assert np.allclose(np.array(embeddings.embed_documents(DOCS)), ref_vectors, atol=1e-4)
    query = st_model.encode([QUERY], normalize_embeddings=True)[0]
    assert np.allclose(embeddings.embed_query(QUERY), query, atol=1e-4)
