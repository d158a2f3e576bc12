"""Long work reports progress when nobody watches a terminal (CI logs), and training shows a concise line instead
of the Trainer's raw dicts and the libraries' INFO chatter."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from searchtune.progress import progress


def test_progress_logs_periodic_lines_off_a_terminal(caplog) -> None:
    caplog.set_level(logging.INFO, logger="searchtune.progress")
    with progress("reranking test", 4, interval=0.0) as advance:
        for _ in range(4):
            advance(1, info="query x")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("reranking test: 1/4 (25%), 0s elapsed, ~") and "left, query x" in lines[0]
    assert "reranking test: 2/4 (50%)" in lines[1] and "left" in lines[1]
    assert re.match(r"reranking test: done 4/4 in \d+s, query x", lines[-1])


def test_training_prints_concise_progress(cli, tmp_path: Path) -> None:
    triplets = tmp_path / "triplets.jsonl"
    records = [{"query": f"question {i} about vitamin D", "positive": f"vitamin D answer {i}",
                "negatives": [f"unrelated text {i}", f"stock market {i}"]} for i in range(12)]
    triplets.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("train", "rerank", "--triplets", str(triplets), "-o", str(tmp_path / "m"), "--max-steps", "3",
                 "--batch-size", "4", "--max-length", "32", "--precision", "fp32",
                 env={"SEARCHTUNE_PROGRESS_INTERVAL": "0", "HF_HUB_OFFLINE": "1"}, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "training rerank: done 3/3" in output and "loss" in output
    assert "{'loss'" not in output and "'grad_norm'" not in output, output
    assert "Some weights" not in output and "Computing widget examples" not in output, output
