"""Where one serving batch spends its time: 50 (query, SciFact document) pairs at 256 tokens through the MiniLM-L6
cross-encoder, per backend, in-process (the backends' own ``run`` on the batcher's encodings, as the server does).

For torch (fp32 and bf16 autocast) it prints torch.profiler's top operators by self CPU time; for OpenVINO its
per-layer-type performance counters (the kernel each layer ran, e.g. ``brgemm_avx512_amx``), plus wall and process
CPU time of a batch for every backend. CPU time is printed because on a shared machine wall time mostly measures
the neighbours; CPU seconds per batch is what the work costs.

    .venv/bin/python benchmarks/serve_profile.py                   # torch-fp32,torch-bf16,openvino-bf16
    .venv/bin/python benchmarks/serve_profile.py --backends openvino-bf16 --repeats 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BACKENDS = {"torch-fp32": dict(backend="torch", precision="fp32"),
            "torch-bf16": dict(backend="torch", precision="bf16"),
            "onnx-fp32": dict(backend="onnx", quantize="none"),
            "openvino-fp32": dict(backend="openvino", precision="fp32"),
            "openvino-bf16": dict(backend="openvino", precision="bf16")}


def scifact_pairs(n: int) -> tuple[str, list[str]]:
    from searchtune.config import shared_datasets_dir

    corpus = shared_datasets_dir() / "scifact" / "beir_format_derived" / "corpus.jsonl"
    docs = []
    with corpus.open() as handle:
        for line in handle:
            row = json.loads(line)
            docs.append(f"{row.get('title', '')} {row['text']}".strip())
            if len(docs) == n:
                break
    return "vitamin d supplementation and bone fractures in older adults", docs


def timed(backend, units, repeats: int) -> dict:
    backend.run(units)  # first call pays for lazy initialisation
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        backend.run(units)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall_ms": round(statistics.median(walls) * 1000, 1), "cpu_ms": round(statistics.median(cpus) * 1000, 1)}


def torch_profile(backend, units, top: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        backend.run(units)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))


def openvino_profile(backend, units, top: int) -> None:
    """Per layer type: share of the summed layer times and the kernels that ran (PERF_COUNT on a fresh request)."""
    from searchtune.serve.backends.openvino import compile_network

    features, _ = backend._features(units)
    request = compile_network(backend.source, backend.precision, PERF_COUNT=True).create_infer_request()
    request.infer({name: features[name].numpy() for name in backend._input_names})
    by_type: dict[str, float] = defaultdict(float)
    kernels: dict[str, set] = defaultdict(set)
    for info in request.profiling_info:
        by_type[info.node_type] += info.real_time.total_seconds()
        kernels[info.node_type].add(info.exec_type)
    total = sum(by_type.values()) or 1.0
    for node_type, seconds in sorted(by_type.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {node_type:<28} {100 * seconds / total:5.1f}%  {', '.join(sorted(kernels[node_type]))[:90]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="torch-fp32,torch-bf16,openvino-bf16")
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("SEARCHTUNE_HOME", tempfile.mkdtemp(prefix="serve-profile-"))
    import torch
    from sentence_transformers import CrossEncoder

    from searchtune.models import default_base_model
    from searchtune.serve.backends import load_backend

    model = Path(os.environ["SEARCHTUNE_HOME"]) / "minilm-ce"
    if not model.exists():
        torch.manual_seed(0)
        CrossEncoder(default_base_model(), num_labels=1, max_length=args.max_length).save_pretrained(str(model))
    query, docs = scifact_pairs(args.pairs)
    print(f"{args.pairs} pairs, max_length {args.max_length}, load average {open('/proc/loadavg').read().split()[:3]}")
    for label in args.backends.split(","):
        backend = load_backend(str(model), max_length=args.max_length, **BACKENDS[label])
        units = backend.tokenizer.pairs(query, docs)
        figures = timed(backend, units, args.repeats)
        print(f"\n== {label}: batch of {len(units)} x {max(u.tokens for u in units)} tokens: {figures}, "
              f"{args.pairs / figures['cpu_ms'] * 1000 * os.cpu_count():.1f} pairs/s if all "
              f"{os.cpu_count()} cores did only this (load average {open('/proc/loadavg').read().split()[:3]})")
        if label.startswith("openvino"):
            openvino_profile(backend, units, args.top)
        else:
            torch_profile(backend, units, args.top)
        backend.close()


if __name__ == "__main__":
    main()
