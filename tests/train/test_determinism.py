"""Same data + same command => same model, on an idle and on a busy machine; a time cap that cuts training says so.

Two short fixed-step trainings of the embedder (real base model, real SciFact subset, the default precision and
thread settings), the second with a CPU-bound process running beside it, must write byte-identical weights: the
amount trained is fixed and the thread count comes from the CPU set, never from the load.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.data import load_dataset

runner = CliRunner()
SHORT = ["--max-length", "64", "--batch-size", "8", "--negatives", "1"]
#: Busy-loops for at most this many seconds (killed as soon as the training ends).
BURN_SECONDS = 90


@pytest.fixture(scope="module")
def triplets(tiny_dataset: Path, tmp_path_factory) -> Path:
    """Each judged pair with the next query's positive as its negative (no search node needed)."""
    ds = load_dataset(tiny_dataset)
    qrels = ds.split_qrels("train")
    pairs = [(qid, did) for qid in sorted(qrels) for did in sorted(qrels[qid]) if did in ds.corpus]
    path = tmp_path_factory.mktemp("det") / "triplets.jsonl"
    with open(path, "w") as out:
        for i, (qid, did) in enumerate(pairs):
            negative = ds.corpus[pairs[(i + 1) % len(pairs)][1]].full_text
            out.write(json.dumps({"query_id": qid, "query": ds.queries[qid].text, "positive": ds.corpus[did].full_text,
                                  "negatives": [negative]}) + "\n")
    return path


def _train(triplets: Path, out: Path, *extra: str) -> dict:
    result = runner.invoke(app, ["train", "embed", "--triplets", str(triplets), "--output", str(out), *SHORT, *extra])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "training.json").read_text())
    record["_output"] = result.output
    return record


def _weights_digest(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_same_command_same_weights_with_a_busy_cpu_beside_it(triplets: Path, tmp_path: Path) -> None:
    quiet = _train(triplets, tmp_path / "quiet", "--max-steps", "3")
    burner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.monotonic() + %d\n"
                               "while time.monotonic() < end:\n    pass\n" % BURN_SECONDS])
    try:
        busy = _train(triplets, tmp_path / "busy", "--max-steps", "3")
        assert burner.poll() is None, "the CPU-bound process ended before the second training did"
    finally:
        burner.kill()
        burner.wait()
    assert quiet["global_step"] == busy["global_step"] == 3
    assert quiet["schedule"]["steps_done"] == 3 and not busy["schedule"]["cut_by_time_budget"]
    assert quiet["throughput"]["threads"] == busy["throughput"]["threads"]
    assert _weights_digest(tmp_path / "quiet") == _weights_digest(tmp_path / "busy")


def test_a_time_cap_that_cuts_training_says_so(triplets: Path, tmp_path: Path) -> None:
    record = _train(triplets, tmp_path / "capped", "--max-steps", "6", "--time-cap-minutes", "0.0001")
    assert record["global_step"] < 6 and record["schedule"]["cut_by_time_budget"]
    assert "WARNING: the time budget" in record["_output"] and "of 6" in record["_output"]
