"""Real servers for the serving tests: `searchtune serve` subprocesses on free ports, real small models.

The cross-encoder is all-MiniLM-L6-v2 with a fresh (untrained) one-logit head: a real model whose scores are
meaningless for relevance but exact for protocol tests. max_length 128 keeps every forward pass short.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from searchtune.serve.process import ServerProcess, start_server_process

API_KEY = "test-key-5f1c"
MAX_LEN = "128"


def make_cross_encoder(base_model_path: str, folder: Path, seed: int) -> str:
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(seed)
    model = CrossEncoder(base_model_path, num_labels=1, max_length=128)
    model.save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="session")
def api_key() -> str:
    """The bearer key the cross-encoder server accepts."""
    return API_KEY


@pytest.fixture(scope="session")
def serve_home(tmp_path_factory) -> Path:
    """SEARCHTUNE_HOME of the servers (ONNX export cache) so tests never touch the user's cache."""
    return tmp_path_factory.mktemp("serve-home")


@pytest.fixture(scope="session")
def cross_encoder_dir(base_model_path: str, tmp_path_factory) -> str:
    return make_cross_encoder(base_model_path, tmp_path_factory.mktemp("ce-a"), seed=1)


@pytest.fixture(scope="session")
def cross_encoder_dir_b(base_model_path: str, tmp_path_factory) -> str:
    return make_cross_encoder(base_model_path, tmp_path_factory.mktemp("ce-b"), seed=2)


def _start(model: str, serve_home: Path, backend: str, *extra: str, api_key: str | None = None,
           names: str = "") -> ServerProcess:
    return start_server_process(model, backend=backend, api_key=api_key,
                                env={"SEARCHTUNE_HOME": str(serve_home), "SEARCHTUNE_SERVE_MODEL_NAMES": names},
                                extra_args=["--max-length", MAX_LEN, *extra])


@pytest.fixture(scope="session")
def ce_server(cross_encoder_dir: str, serve_home: Path):
    """Cross-encoder, torch fp32, API key required, small limits so oversize requests are cheap to send."""
    server = _start(cross_encoder_dir, serve_home, "torch", "--precision", "fp32", "--max-documents", "20",
                    "--max-document-chars", "2000", "--max-body-bytes", "65536", api_key=API_KEY,
                    names="gte-rerank")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def matryoshka_dir(base_model_path: str, tmp_path_factory) -> str:
    """The embedding model, copied with a declaration that it was trained with a Matryoshka loss (what
    training.json says for such models); only this declaration lets the server truncate its vectors."""
    import json
    import shutil

    folder = tmp_path_factory.mktemp("mrl") / "minilm-mrl"
    shutil.copytree(base_model_path, folder)
    (folder / "training.json").write_text(json.dumps({"task": "embed", "loss": "matryoshka",
                                                      "matryoshka_dims": [384, 256, 128, 64]}))
    return str(folder)


@pytest.fixture(scope="session")
def mrl_server(matryoshka_dir: str, serve_home: Path):
    server = _start(matryoshka_dir, serve_home, "torch", "--precision", "fp32")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def emb_server(base_model_path: str, serve_home: Path):
    """The embedding model itself (rerank routes score by cosine), torch fp32, no key; also answers to 'minilm'."""
    server = _start(base_model_path, serve_home, "torch", "--precision", "fp32", names="minilm")
    yield server
    server.stop()
