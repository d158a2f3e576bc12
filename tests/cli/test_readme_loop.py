"""README's hand-driven loop ("A first session by hand" and "The rest of the loop"), run as written.

The commands are read from README.md between the ``readme-loop`` markers, so the docs cannot drift from the code.
Only the variables the README itself defines are changed: ``D`` points at a small SciFact subset (so training is
three steps and every eval a few seconds; the whole loop takes 5-10 minutes, most of it process start-ups) and the ports at free ones; the node, the store and the outputs are the
test's own. Everything is real: an Elasticsearch node started by ``searchtune es start``, training, the registry,
``searchtune serve`` and the gateway as background jobs of the same shell, HTTP between them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
#: The README loop starts this node; the test's node folder is removed before and after (a fresh machine).
NODE_NAME = "first-session"


def readme_loop() -> str:
    """The bash lines of every code block between the markers, in order."""
    text = README.read_text()
    section = text.split("<!-- readme-loop:start -->", 1)[1].split("<!-- readme-loop:end -->", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert blocks, "no bash blocks between the readme-loop markers"
    return "\n".join(blocks)


def override(script: str, values: dict[str, str]) -> str:
    """Replace the value of ``NAME=value`` assignments the README makes (only those, only their value)."""
    for name, value in values.items():
        script, count = re.subn(rf"(?m)(^|\s){name}=\S+", rf"\g<1>{name}={value}", script)
        assert count == 1, f"README loop must assign {name} exactly once"
    return script


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def node_root() -> Path:
    """A nodes folder of its own (the service user can traverse it, unlike pytest's tmp folders)."""
    from searchtune.nodes.node import nodes_root

    root = nodes_root().parent / (nodes_root().name + "-readme")
    shutil.rmtree(root / "elasticsearch" / NODE_NAME, ignore_errors=True)
    yield root
    shutil.rmtree(root / "elasticsearch" / NODE_NAME, ignore_errors=True)


@pytest.fixture(scope="module")
def tiny_dataset(scifact_dir: Path, tmp_path_factory) -> Path:
    """SciFact's first 12 train and 4 test queries with 100 distractors: training takes three steps."""
    from searchtune.data import load_dataset
    from searchtune.data.split import sample_subset
    from searchtune.data.writers import write_beir

    subset = sample_subset(load_dataset(scifact_dir), {"train": 12, "test": 4}, distractors=100, name="tiny")
    return write_beir(subset, tmp_path_factory.mktemp("readme") / "tiny" / "beir_format_derived")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_readme_loop_runs_as_written(tiny_dataset: Path, tmp_path: Path, node_root: Path) -> None:
    es_port = int(os.environ.get("SEARCHTUNE_TEST_ES_PORT", "9251")) + 4  # transport: +100
    script = override(readme_loop(), {"D": str(tiny_dataset), "MODEL_PORT": str(_free_port()),
                                      "GATEWAY_PORT": str(_free_port())})
    (tmp_path / "loop.sh").write_text("set -euo pipefail\nPS4='+ [$(date +%T)] '\nset -x\n" + script)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "COLUMNS": "200",
           "SEARCHTUNE_NODES_DIR": str(node_root), "SEARCHTUNE_ES_PORT": str(es_port),
           "SEARCHTUNE_ES_URL": f"http://127.0.0.1:{es_port}", "SEARCHTUNE_ES_HEAP": "512m",
           "SEARCHTUNE_STORE": str(tmp_path / "store"), "SEARCHTUNE_HOME": str(tmp_path / "home"),
           "SEARCHTUNE_PROGRESS_INTERVAL": "5", "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "loop.log"  # written as it runs: a slow or stuck step shows where it is
    with open(log, "w") as sink:
        shell = subprocess.Popen(["bash", "loop.sh"], cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            shell.wait(timeout=1500)
        finally:
            _stop_everything(shell, env)
    output = log.read_text()
    assert shell.returncode == 0, output[-6000:]
    assert "Traceback" not in output and not re.search(r"(?m)^error:", output), output[-6000:]

    # each step used the previous one's output
    bm25 = json.loads((tmp_path / "bm25.json").read_text())
    assert bm25["dataset"] == "tiny" and bm25["systems"]["BM25"]["num_queries"] == 4
    assert (tmp_path / "scifact-split" / "qrels" / "dev.tsv").is_file()
    card = json.loads((tmp_path / "models" / "scifact-embed" / "training.json").read_text())
    assert card["data"]["triplets_file"] == "triplets.jsonl" and card["data"]["dev_split"] == "dev"
    assert card["data"]["dataset_name"] == "scifact-split"
    assert (tmp_path / "store" / "datasets" / "scifact-split" / "manifest.json").is_file()
    index = json.loads((tmp_path / "store" / "models" / "scifact-embed" / "index.json").read_text())
    evaluations = index["versions"]["1"]["evaluations"]
    assert [e["dataset"] for e in evaluations] == ["scifact-split"] and index["aliases"] == {"prod": 1}
    assert "scifact-split/test NDCG@10" in index["versions"]["1"]["metrics"]
    assert re.search(r"pipeline scifact-rerank\s+│\s+4\s", output), output[-3000:]
    assert f"elasticsearch '{NODE_NAME}' stopped" in output


def _stop_everything(shell: subprocess.Popen, env: dict) -> None:
    """Whatever the loop left running when it failed: its background jobs, then its node."""
    if shell.poll() is None:
        os.killpg(shell.pid, signal.SIGTERM)
        shell.wait(30)
    try:
        os.killpg(shell.pid, signal.SIGTERM)  # background jobs of the shell share its process group
    except ProcessLookupError:
        pass
    subprocess.run([sys.executable, "-m", "searchtune.cli", "es", "stop", "--name", NODE_NAME], env=env,
                   capture_output=True, timeout=120)
