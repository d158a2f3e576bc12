"""Benchmark: one pass over a corpus with the embedder the stack choice used before (sentence-transformers in this
process, torch autocast) and with the serving backend in this process (serve/embedder.py), in the same run.

Why: choosing what to deploy embeds the whole corpus once per candidate model (train/choose.py); in the quickstart
that was 6.6 of its 25.5 minutes. Each embedder runs in its own process (each loads its own runtime and threads),
on the same texts, after a warm-up batch; the serving backend's figure includes its one-time ONNX export and
compile (``load_s``), cached afterwards. Prints docs/s, the ratio, and how close the vectors are (mean and minimum
cosine between the two runtimes' vectors of each text), with ``uptime`` before and after.

    .venv/bin/python benchmarks/corpus_embedding.py --docs 5183 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from searchtune.config import shared_datasets_dir


def embed_in_child(kind: str, docs: int, out: Path, home: Path) -> dict:
    """Run this file in ``--child`` mode (one runtime per process) and read its timing."""
    env = {**os.environ, "SEARCHTUNE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, __file__, "--child", kind, "--docs", str(docs), "--vectors", str(out)],
                   check=True, env=env)
    return json.loads(out.with_suffix(".json").read_text())


def child(kind: str, docs: int, vectors_path: Path) -> None:
    from searchtune.data.loaders import load_dataset
    from searchtune.serve.embedder import open_serving_embedder
    from searchtune.vectors.embedders import open_embedder

    corpus = load_dataset(shared_datasets_dir() / "scifact" / "beir_format_derived").corpus
    texts = [d.full_text for d in list(corpus.values())[:docs]]
    started = time.perf_counter()
    embedder = open_serving_embedder(None) if kind == "serving" else open_embedder(None)
    load_s = time.perf_counter() - started
    embedder.embed(texts[:16])  # warm-up: kernels, thread pools
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - started
    runtime = getattr(getattr(embedder, "backend", None), "backend", "torch (sentence-transformers)")
    np.save(vectors_path, vectors)
    vectors_path.with_suffix(".json").write_text(json.dumps({
        "runtime": runtime, "docs": len(texts), "load_s": round(load_s, 1), "seconds": round(seconds, 1),
        "docs_per_second": round(len(texts) / seconds, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=5183, help="first N SciFact documents (5183: all)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", choices=("torch", "serving"), help=argparse.SUPPRESS)
    parser.add_argument("--vectors", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.docs, args.vectors)
        return
    print("uptime before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = {kind: embed_in_child(kind, args.docs, work / f"{kind}.npy", work / "home")
                   for kind in ("torch", "serving")}
        a, b = np.load(work / "torch.npy"), np.load(work / "serving.npy")
    cosine = np.sum(a * b, axis=1)
    results["ratio"] = round(results["serving"]["docs_per_second"] / results["torch"]["docs_per_second"], 2)
    results["cosine_torch_vs_serving"] = {"mean": round(float(cosine.mean()), 5), "min": round(float(cosine.min()), 5)}
    print("uptime after: ", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    for kind in ("torch", "serving"):
        r = results[kind]
        print(f"{kind:8s} {r['runtime']:32s} load {r['load_s']:5.1f}s  {r['docs']} docs in {r['seconds']:6.1f}s  "
              f"{r['docs_per_second']:6.1f} docs/s")
    print(f"serving / torch: {results['ratio']:.2f}x; cosine between their vectors: mean "
          f"{results['cosine_torch_vs_serving']['mean']:.5f}, min {results['cosine_torch_vs_serving']['min']:.5f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
