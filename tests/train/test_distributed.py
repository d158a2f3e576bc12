"""The same `train` command under `torchrun --nproc_per_node 2`: two real gloo processes on CPU, a few steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from searchtune.scoring import load_scorer
from searchtune.serve.process import free_port


def test_torchrun_two_gloo_processes(triplets_file: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "searchtune"
    out = tmp_path / "ddp-embedder"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
            "--master_port", str(free_port()), str(script), "train", "embed", "--triplets", str(triplets_file),
            "--output", str(out), "--max-steps", "2", "--max-length", "32", "--batch-size", "2",
            "--precision", "fp32"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((out / "training.json").read_text())
    assert record["hardware"]["world_size"] == 2
    assert record["global_step"] == 2
    # only rank 0 writes: one model folder, complete and loadable
    scorer = load_scorer(str(out), max_length=32, precision="fp32")
    assert len(scorer.score("fracture risk", ["bone fractures", "stock markets"])) == 2
