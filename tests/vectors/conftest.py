"""A real SciFact slice indexed *with vectors* of the bundled all-MiniLM-L6-v2, built once per session through the
`searchtune index --vectors` command; and the embedder itself, loaded once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from searchtune.data import load_dataset
from searchtune.data.split import sample_subset
from searchtune.data.writers import write_beir

#: Short inputs keep embedding a few hundred documents within seconds on 2 shared cores; the server and the
#: in-process embedder must use the same length to produce the same vectors.
MAX_LENGTH = 128


@pytest.fixture(scope="session")
def vec_dataset(scifact_dir: Path, tmp_path_factory) -> Path:
    """20 test and 10 train SciFact queries, every document they judge, and 200 real distractors."""
    subset = sample_subset(load_dataset(scifact_dir), {"test": 20, "train": 10}, distractors=200, name="scifact-vec")
    return write_beir(subset, tmp_path_factory.mktemp("scifact-vec") / "data")


@pytest.fixture(scope="session")
def embedder(base_model_path: str):
    from searchtune.vectors.embedders import open_embedder

    emb = open_embedder(base_model_path, max_length=MAX_LENGTH, precision="fp32")
    yield emb
    emb.close()


@pytest.fixture(scope="session")
def vec_index(es, es_url: str, vec_dataset: Path, base_model_path: str):
    """The slice indexed with vectors by the CLI (alias name), deleted at the end of the session."""
    from typer.testing import CliRunner

    from searchtune.cli.main import app

    name = f"t-vec-{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(app, ["index", str(vec_dataset), "--index", name, "--vectors", base_model_path,
                                      "--max-length", str(MAX_LENGTH), "--es-url", es_url])
    assert result.exit_code == 0, result.output
    assert "docs/s" in result.output
    yield name
    es.indices.delete(index=f"{name}-*", ignore_unavailable=True)
