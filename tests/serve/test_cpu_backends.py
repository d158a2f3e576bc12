"""The CPU backends beside torch: ONNX Runtime int8 and OpenVINO (both from the ONNX export made through
sentence-transformers and cached), each served over real HTTP against torch fp32 scores of the same model, an
OpenVINO embedding model in-process, and the default backend choice."""

from __future__ import annotations

import importlib.util

import httpx
import numpy as np
import pytest

from searchtune.serve.process import start_server_process

QUERY = "vitamin d and fractures"
DOCS = ["Vitamin D lowers fracture risk.", "Tea prices rose.", "Bone density in older adults.",
        " ".join(["bone"] * 300)]
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None


def _openvino_precision() -> str:
    from searchtune.scoring import cpu_supports_bf16

    return "bf16" if cpu_supports_bf16() else "fp32"


@pytest.mark.parametrize("backend, args, tolerance", [
    ("onnx", ["--quantize", "int8"], 0.02),
    pytest.param("openvino", [], 0.01, marks=pytest.mark.skipif(not HAS_OPENVINO,
                                                                  reason="openvino not installed")),
])
def test_cpu_backend_serves_rerank_close_to_torch_fp32(backend, args, tolerance, cross_encoder_dir,
                                                       serve_home) -> None:
    from searchtune.scoring import load_scorer

    reference = load_scorer(cross_encoder_dir, precision="fp32", device="cpu", max_length=128).score(QUERY, DOCS)
    server = start_server_process(cross_encoder_dir, backend="auto" if backend == "onnx" else backend,
                                  env={"SEARCHTUNE_HOME": str(serve_home)}, extra_args=["--max-length", "128", *args])
    expected = ("onnx", "int8") if backend == "onnx" else ("openvino", _openvino_precision())
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            info = client.get("/v1/models").json()["data"][0]
            assert (info["backend"], info["precision"], info["kind"]) == (*expected, "cross-encoder")
            rows = client.post("/rerank", json={"query": QUERY, "texts": DOCS}).json()
            scores = {r["index"]: r["score"] for r in rows}
            assert [scores[i] for i in range(len(DOCS))] == pytest.approx(reference, abs=tolerance)
            # more inputs than CPU streams: OpenVINO splits the batch over them and puts the rows back in order
            many = client.post("/v1/rerank", json={"query": QUERY, "documents": DOCS * 5}).json()["results"]
            by_index = {r["index"]: r["relevance_score"] for r in many}
            assert [by_index[i] for i in range(len(DOCS) * 5)] == pytest.approx(reference * 5, abs=tolerance)
        exported = "model_qint8_*.onnx" if backend == "onnx" else "model.onnx"
        assert list((serve_home / "cache" / "onnx").glob(f"*/onnx/{exported}"))  # exported once, cached
    finally:
        server.stop()


def test_openvino_embeddings_match_torch_fp32(base_model_path, serve_home, monkeypatch) -> None:
    pytest.importorskip("openvino")
    from searchtune.serve.backends import load_backend
    from searchtune.serve.vectors import unit_rows

    monkeypatch.setenv("SEARCHTUNE_HOME", str(serve_home))
    texts = [QUERY, *DOCS]
    vectors = {}
    for backend in ("torch", "openvino"):
        loaded = load_backend(base_model_path, backend=backend, precision="fp32" if backend == "torch" else "auto",
                              max_length=128)
        assert loaded.describe()["dimension"] == 384
        vectors[backend] = unit_rows(np.asarray(loaded.run(loaded.tokenizer.texts(texts))))
        loaded.close()
    cosine = np.sum(vectors["torch"] * vectors["openvino"], axis=1)
    assert cosine.min() > 0.999  # the same embedding per text, bf16 rounding aside
    assert np.argsort(vectors["openvino"][1:] @ vectors["openvino"][0]).tolist() == \
        np.argsort(vectors["torch"][1:] @ vectors["torch"][0]).tolist()


def test_openvino_query_runs_on_int8_weights_and_keeps_the_ranking(base_model_path, serve_home, monkeypatch) -> None:
    """A lone query (under SMALL_BATCH_TOKENS padded tokens) runs the int8-weight network, a batch the main one;
    the query's vector stays the fp32 one (cosine) and ranks the documents as fp32 does; the compressed network is
    cached and a second start gives the same vector from it."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from searchtune.serve.backends import load_backend
    from searchtune.serve.vectors import unit_rows

    monkeypatch.setenv("SEARCHTUNE_HOME", str(serve_home))
    loaded = load_backend(base_model_path, backend="openvino", max_length=128)
    reference = load_backend(base_model_path, backend="torch", precision="fp32", max_length=128)
    assert loaded.small is not None
    calls = []
    real_infer = loaded._small_request.infer
    loaded._small_request = type("Counting", (), {"infer": lambda self, a: calls.append(1) or real_infer(a)})()
    query = unit_rows(np.asarray(loaded.run(loaded.tokenizer.texts([QUERY]))))[0]
    assert calls == [1], "a lone query did not run the int8-weight network"
    docs = unit_rows(np.asarray(loaded.run(loaded.tokenizer.texts(DOCS))))
    assert calls == [1], "a batch of documents ran the small-batch network"
    want_query = unit_rows(np.asarray(reference.run(reference.tokenizer.texts([QUERY]))))[0]
    want_docs = unit_rows(np.asarray(reference.run(reference.tokenizer.texts(DOCS))))
    assert float(query @ want_query) > 0.995
    assert np.argsort(docs @ query).tolist() == np.argsort(want_docs @ want_query).tolist()
    loaded.close()
    reference.close()
    # the compressed network was cached; the next start reads it back and answers the same vector
    assert list((serve_home / "cache" / "openvino").glob("*/model.xml"))
    again = load_backend(base_model_path, backend="openvino", max_length=128)
    assert again.small is not None
    np.testing.assert_allclose(unit_rows(np.asarray(again.run(again.tokenizer.texts([QUERY]))))[0], query, atol=1e-5)
    again.close()


def test_openvino_refuses_what_it_cannot_serve(cross_encoder_dir) -> None:
    pytest.importorskip("openvino")
    from searchtune.serve.backends import BackendError, load_backend

    with pytest.raises(BackendError, match="fp32 or bf16"):
        load_backend(cross_encoder_dir, backend="openvino", precision="fp16")
    with pytest.raises(BackendError, match="needs --backend onnx"):
        load_backend(cross_encoder_dir, backend="openvino", quantize="int8")


def test_auto_backend_follows_the_hardware() -> None:
    from searchtune.scoring import cpu_supports_bf16
    from searchtune.serve.backends import choose_backend
    from searchtune.serve.backends.openvino import openvino_available

    assert choose_backend("torch") == "torch" and choose_backend("onnx") == "onnx"
    assert choose_backend("openvino") == "openvino"
    assert choose_backend("auto", quantize="int8") == "onnx"
    assert choose_backend("auto", device="cuda") == "torch"
    bf16_cpu = "openvino" if openvino_available() else "torch"
    expected = bf16_cpu if cpu_supports_bf16() else "onnx"
    assert choose_backend("auto", device="cpu", kind="cross-encoder") == expected
    # embedding models too: documents on bf16 kernels, queries on int8-compressed weights (docs/serving.md)
    assert choose_backend("auto", device="cpu", kind="embedding") == expected
