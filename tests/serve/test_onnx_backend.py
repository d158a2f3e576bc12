"""ONNX Runtime int8 backend (exported through sentence-transformers, cached), and the default backend choice."""

from __future__ import annotations

import httpx
import pytest

from searchtune.serve.process import start_server_process

QUERY = "vitamin d and fractures"
DOCS = ["Vitamin D lowers fracture risk.", "Tea prices rose.", "Bone density in older adults.",
        " ".join(["bone"] * 300)]


def test_quantize_int8_serves_onnx_int8_close_to_fp32(cross_encoder_dir, serve_home) -> None:
    from searchtune.scoring import load_scorer

    reference = load_scorer(cross_encoder_dir, precision="fp32", device="cpu", max_length=128).score(QUERY, DOCS)
    server = start_server_process(cross_encoder_dir, backend="auto", env={"SEARCHTUNE_HOME": str(serve_home)},
                                  extra_args=["--max-length", "128", "--quantize", "int8"])
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            info = client.get("/v1/models").json()["data"][0]
            assert (info["backend"], info["precision"], info["kind"]) == ("onnx", "int8", "cross-encoder")
            rows = client.post("/rerank", json={"query": QUERY, "texts": DOCS}).json()
            scores = {r["index"]: r["score"] for r in rows}
            assert [scores[i] for i in range(len(DOCS))] == pytest.approx(reference, abs=0.02)
            cohere = client.post("/v1/rerank", json={"query": QUERY, "documents": DOCS}).json()
            assert len(cohere["results"]) == len(DOCS)
        assert list((serve_home / "cache" / "onnx").glob("*/onnx/model_qint8_*.onnx"))  # exported once, cached
    finally:
        server.stop()


def test_auto_backend_follows_the_hardware() -> None:
    from searchtune.scoring import cpu_supports_bf16
    from searchtune.serve.backends import choose_backend

    assert choose_backend("torch") == "torch" and choose_backend("onnx") == "onnx"
    assert choose_backend("auto", quantize="int8") == "onnx"
    assert choose_backend("auto", device="cuda") == "torch"
    from searchtune.serve.backends.openvino import openvino_available

    bf16_cpu = "openvino" if openvino_available() else "torch"
    expected = bf16_cpu if cpu_supports_bf16() else "onnx"
    assert choose_backend("auto", device="cpu") == expected
