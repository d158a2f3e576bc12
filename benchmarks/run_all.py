"""Run every benchmark in sequence against one local Elasticsearch node (started if needed) and keep their logs.

Each script prints its own figures against a baseline measured in the same run; this runner only orders them,
starts the node they share, and saves each script's output under ``benchmarks/results/``.
Usage: python benchmarks/run_all.py [--only serve,gateway] [--es-url URL]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: name -> (script, extra arguments); the cheap ones first so a long run fails early
BENCHMARKS = {
    "mining": ("mining.py", []),
    "choose": ("choose_small.py", ["--datasets", "cranfield,npl"]),
    "gateway": ("gateway_bench.py", ["--with-model"]),
    "serve": ("serve_bench.py", []),
    "train": ("train_scifact.py", []),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    parser.add_argument("--es-url", help="use this cluster instead of the local node")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    from searchtune.data.loaders import load_dataset
    from searchtune.config import shared_datasets_dir
    from searchtune.search.client import es_client
    from searchtune.nodes.elasticsearch_node import elasticsearch_node
    from searchtune.search.indexing import build_index, index_exists

    node = None
    es_url = args.es_url
    if not es_url:
        node = elasticsearch_node(name="bench", port=9261)
        es_url = node.start()
    client = es_client(es_url)
    if not index_exists(client, "scifact"):
        ds = load_dataset(shared_datasets_dir() / "scifact" / "beir_format_derived")
        build_index(client, "scifact", ds.corpus.values(), total=len(ds.corpus))
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    failures = 0
    try:
        for name in chosen:
            script, extra = BENCHMARKS[name]
            log_path = results / f"{name}.log"
            print(f"== {name}: {script} (log: {log_path})", flush=True)
            start = time.perf_counter()
            with open(log_path, "w") as log:
                code = subprocess.run([sys.executable, str(HERE / script), "--es-url", es_url, *extra],
                                      stdout=log, stderr=subprocess.STDOUT).returncode
            print(f"   exit {code} after {time.perf_counter() - start:.0f}s", flush=True)
            failures += code != 0
    finally:
        if node is not None:
            node.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
