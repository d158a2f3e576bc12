"""Real parts for the workbench tests: a SciFact slice indexed with vectors of the bundled MiniLM, `searchtune
serve` on that model, the gateway process with a `hybrid` pipeline in front of the test node, `searchtune
workbench` processes on a temporary store, and Debian's headless Chromium driven through chromium-driver."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from searchtune.data import load_dataset
from searchtune.data.split import sample_subset
from searchtune.data.writers import write_beir
from searchtune.subprocesses import ChildProcess, launch

#: The server and the index must embed with the same length (as in tests/vectors).
MAX_LENGTH = 128
PIPELINE = "hybrid"


@pytest.fixture(scope="session")
def wb_dataset(scifact_dir: Path, tmp_path_factory) -> Path:
    """10 test SciFact queries, every document they judge, and 150 real distractors."""
    subset = sample_subset(load_dataset(scifact_dir), {"test": 10}, distractors=150, name="wb-scifact")
    return write_beir(subset, tmp_path_factory.mktemp("wb-scifact") / "data")


@pytest.fixture(scope="session")
def wb_index(es, es_url: str, wb_dataset: Path, base_model_path: str):
    from searchtune.cli.main import app

    name = f"t-wb-{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(app, ["index", str(wb_dataset), "--index", name, "--vectors", base_model_path,
                                      "--max-length", str(MAX_LENGTH), "--es-url", es_url])
    assert result.exit_code == 0, result.output
    yield name
    es.indices.delete(index=f"{name}-*", ignore_unavailable=True)


@pytest.fixture(scope="session")
def wb_gateway(es, es_url: str, base_model_path: str):
    """The gateway in front of the node, with pipeline ``hybrid`` (BM25 + kNN through `searchtune serve`)."""
    from searchtune.gateway.auth import ADMIN_KEY_HEADER
    from searchtune.gateway.process import start_gateway_process
    from searchtune.serve.process import start_server_process

    # the pipeline names the model as the index's vectors do; the server answers to that name too
    server = start_server_process(base_model_path, port=0, backend="torch",
                                  env={"SEARCHTUNE_SERVE_MODEL_NAMES": "all-MiniLM-L6-v2"},
                                  extra_args=["--max-length", str(MAX_LENGTH), "--precision", "fp32"])
    pipelines = f"t-wb-pipelines-{uuid.uuid4().hex[:8]}"
    try:
        admin_key = "t-wb-admin-" + uuid.uuid4().hex  # pipeline writes need the gateway's admin key
        with start_gateway_process(es_url, port=0, timeout_s=20.0, admin_key=admin_key,
                                   extra_args=["--pipeline-index", pipelines, "--breaker-failures", "50"]) as gateway:
            hybrid = {"hybrid": {"model_id": "all-MiniLM-L6-v2", "endpoint": f"{server.url}/v1/embeddings", "k": 50,
                                 "fusion": {"method": "linear", "weight": 0.5}}}
            answer = httpx.put(f"{gateway.url}/_search/pipeline/{PIPELINE}", json={"request_processors": [hybrid]},
                               headers={ADMIN_KEY_HEADER: admin_key}, timeout=30)
            assert answer.status_code == 200, answer.text
            yield gateway
    finally:
        server.stop()
        es.indices.delete(index=pipelines, ignore_unavailable=True)


def start_workbench(args: list[str], store: Path) -> ChildProcess:
    """``searchtune workbench ARGS --port 0`` on ``store``; returns once ``/healthz`` answers."""
    return launch(["workbench", *args, "--port", "0"], "workbench", "/healthz", env={"SEARCHTUNE_STORE": str(store)})


@pytest.fixture(scope="session")
def chrome():
    """Debian's chromium in headless mode through Debian's chromium-driver (Selenium never downloads a driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path, browser = shutil.which("chromedriver"), shutil.which("chromium")
    if not driver_path or not browser:
        pytest.fail("chromium and chromium-driver are needed: `make setup` (as root) or apt-get install chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1500,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(180)
    yield driver
    driver.quit()
