"""OpenVINO backend (the cached ONNX export compiled for this CPU, bf16 where it has AMX/AVX512-BF16): served over
real HTTP for a cross-encoder, in-process for an embedding model, each against torch fp32 scores of the same model."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from searchtune.serve.process import start_server_process

pytest.importorskip("openvino")

QUERY = "vitamin d and fractures"
DOCS = ["Vitamin D lowers fracture risk.", "Tea prices rose.", "Bone density in older adults.",
        " ".join(["bone"] * 300)]


def test_openvino_serves_rerank_close_to_torch_fp32(cross_encoder_dir, serve_home) -> None:
    from searchtune.scoring import cpu_supports_bf16, load_scorer

    reference = load_scorer(cross_encoder_dir, precision="fp32", device="cpu", max_length=128).score(QUERY, DOCS)
    server = start_server_process(cross_encoder_dir, backend="openvino", env={"SEARCHTUNE_HOME": str(serve_home)},
                                  extra_args=["--max-length", "128"])
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            info = client.get("/v1/models").json()["data"][0]
            expected = "bf16" if cpu_supports_bf16() else "fp32"
            assert (info["backend"], info["precision"], info["kind"]) == ("openvino", expected, "cross-encoder")
            rows = client.post("/rerank", json={"query": QUERY, "texts": DOCS}).json()
            scores = {r["index"]: r["score"] for r in rows}
            assert [scores[i] for i in range(len(DOCS))] == pytest.approx(reference, abs=0.01)
            # a batch bigger than the stream count is split over the streams and put back in order
            many = client.post("/v1/rerank", json={"query": QUERY, "documents": DOCS * 5}).json()["results"]
            by_index = {r["index"]: r["relevance_score"] for r in many}
            assert [by_index[i] for i in range(len(DOCS) * 5)] == pytest.approx(reference * 5, abs=0.01)
        assert list((serve_home / "cache" / "onnx").glob("*/onnx/model.onnx"))  # the shared ONNX export cache
    finally:
        server.stop()


def test_openvino_embeddings_match_torch_fp32(base_model_path, serve_home, monkeypatch) -> None:
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


def test_openvino_refuses_what_it_cannot_serve(cross_encoder_dir) -> None:
    from searchtune.serve.backends import BackendError, load_backend

    with pytest.raises(BackendError, match="fp32 or bf16"):
        load_backend(cross_encoder_dir, backend="openvino", precision="fp16")
    with pytest.raises(BackendError, match="needs --backend onnx"):
        load_backend(cross_encoder_dir, backend="openvino", quantize="int8")
