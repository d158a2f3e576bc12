"""Benchmark: embedder training throughput at 256 tokens, the old settings vs the new ones, in the same run.

Each setting trains the real base model through ``train_embedder`` (the code path of ``searchtune train embed``) on
SciFact train pairs for a bounded number of steps, in its own process (OpenMP reads its wait policy once per
process, and each process's peak memory is its own). The first step builds kernels and is not timed.

- old: cached MNRL (mini-batch 16), random no-duplicate batches, the model's attention dropout (0.1, given
  explicitly), libgomp's default wait policy (spin, then sleep): what the quickstart ran before issue 15;
- new: the defaults (loss 'auto' from the memory estimate, length-grouped batches, attention dropout off, passive
  OpenMP wait, threads fixed from the CPU set).

Prints steps/s, pairs/s, peak RSS, the new/old ratio, and the extrapolated SciFact epoch (828 triplets after the
dev carve and mining guard, as the issue counts them) against the target of 4 minutes, with ``uptime`` before and
after: on a shared machine the figures are lower bounds for an idle one. Negatives are seeded random SciFact
abstracts (no search node needed); they have the corpus's length distribution, which is all that costs time here.

    .venv/bin/python benchmarks/train_throughput.py --steps 4 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from searchtune.config import shared_datasets_dir

SETTINGS = {
    "old": {"overrides": {"loss": "cached-mnrl", "mini_batch_size": 16, "group_by_length": False,
                          "attention_dropout": 0.1}, "env": {"OMP_WAIT_POLICY": ""}},
    "new": {"overrides": {}, "env": {}},
    # the two losses 'auto' chooses between, with everything else at the defaults (the quickstart's memory budget
    # picks cached MNRL on SciFact: is plain MNRL's speed worth its memory?)
    "plain": {"overrides": {"loss": "mnrl"}, "env": {}},
    "cached": {"overrides": {"loss": "cached-mnrl"}, "env": {}},
}
EPOCH_TRIPLETS = 828
TARGET_EPOCH_SECONDS = 240


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def scifact_triplets(dataset: str, count: int, seed: int):
    from searchtune.data import load_dataset
    from searchtune.data.examples import Triplet

    ds = load_dataset(dataset)
    qrels = ds.split_qrels("train")
    docs = sorted(ds.corpus)
    rng = random.Random(seed)
    triplets = [Triplet(query=ds.queries[q].text, positive=ds.corpus[d].full_text,
                        negatives=[ds.corpus[rng.choice(docs)].full_text], query_id=q)
                for q in sorted(qrels) for d in sorted(qrels[q]) if d in ds.corpus]
    rng.shuffle(triplets)
    return triplets[:count]


def child(name: str, opts) -> dict:
    """Train ``opts.steps + 1`` steps with one setting; time every step after the first."""
    from transformers import TrainerCallback

    from searchtune.train.config import load_config
    from searchtune.train.embed import train_embedder

    class StepClock(TrainerCallback):
        """Step end times, also appended to a file so a setting cut by the timeout still reports its steps."""

        def __init__(self, path: Path):
            self.ends: list[float] = []
            self.cpu: list[float] = []  # process CPU seconds at each step end
            self.path = path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self.cpu.append(usage.ru_utime + usage.ru_stime)
            with open(self.path, "a") as out:
                out.write(f"{self.ends[-1]}\n")

    clock = StepClock(progress_file(opts.work, name))
    overrides = {"max_steps": opts.steps + 1, "max_length": opts.max_length, "batch_size": opts.batch_size,
                 "save_total_limit": 1, "logging_steps": 1000, **SETTINGS[name]["overrides"]}
    if opts.memory_budget_gib:
        overrides["memory_budget_gib"] = opts.memory_budget_gib
    config = load_config("embed", overrides=overrides)
    triplets = scifact_triplets(opts.dataset, opts.batch_size * (opts.steps + 1) * 2, seed=1)
    outcome = train_embedder(config, triplets, f"{opts.work}/{name}", callbacks=[clock])
    timed = clock.ends[-1] - clock.ends[0]
    steps = len(clock.ends) - 1
    record = outcome.record
    pairs_per_step = config.batch_size * (1 + config.num_negatives)
    cpu_per_step = (clock.cpu[-1] - clock.cpu[0]) / steps
    threads = record["throughput"]["threads"]
    return {"setting": name, "loss": record["config"]["loss"], "steps_timed": steps, "seconds": round(timed, 1),
            "cpu_seconds_per_step": round(cpu_per_step, 1), "idle_step_seconds_estimate": cpu_per_step / threads,
            "steps_per_second": steps / timed, "pairs_per_second": steps * pairs_per_step / timed,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "share_of_peak": record["throughput"].get("share_of_peak"),
            "peak_tflops_estimate": record["throughput"].get("peak_tflops_estimate"),
            "threads": record["throughput"]["threads"], "memory_plan": record.get("memory_plan"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def progress_file(work: str, name: str) -> Path:
    return Path(work) / f"{name}.steps"


def partial_result(name: str, opts, batch_pairs: int) -> dict:
    """Figures from the steps a timed-out setting finished (the first one untimed), marked as cut."""
    ends = [float(x) for x in progress_file(opts.work, name).read_text().split()] if progress_file(
        opts.work, name).is_file() else []
    result = {"setting": name, "loss": SETTINGS[name]["overrides"].get("loss", "auto"), "cut_by_timeout": True,
              "steps_finished": len(ends), "peak_rss_gib": float("nan"), "share_of_peak": None}
    if len(ends) < 2:
        result["error"] = f"finished {len(ends)} of {opts.steps + 1} steps in {opts.timeout}s"
        return result
    timed = ends[-1] - ends[0]
    return result | {"steps_timed": len(ends) - 1, "seconds": round(timed, 1),
                     "steps_per_second": (len(ends) - 1) / timed,
                     "pairs_per_second": (len(ends) - 1) * batch_pairs / timed}


def run_setting(name: str, opts) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **SETTINGS[name]["env"]}
    cmd = [sys.executable, __file__, "--child", name, "--steps", str(opts.steps), "--max-length", str(opts.max_length),
           "--batch-size", str(opts.batch_size), "--dataset", opts.dataset, "--work", opts.work]
    if opts.memory_budget_gib:
        cmd += ["--memory-budget-gib", str(opts.memory_budget_gib)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=opts.timeout)
    except subprocess.TimeoutExpired:
        return partial_result(name, opts, batch_pairs=opts.batch_size * 2)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        return {"setting": name, "error": (proc.stderr or proc.stdout)[-800:]}
    result = json.loads(lines[-1][len("RESULT "):])
    result["process_seconds"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(Path(shared_datasets_dir() or "../shared/datasets")
                                                 / "scifact" / "beir_format_derived"))
    parser.add_argument("--steps", type=int, default=4, help="timed steps per setting (after one untimed step)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--memory-budget-gib", type=float, default=None, help="for loss 'auto' (default: half of RAM)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per setting")
    parser.add_argument("--work", default="/tmp/searchtune-train-throughput")
    parser.add_argument("--json", default=None)
    parser.add_argument("--settings", default="old,new", help=f"comma-separated, of {', '.join(SETTINGS)}; the first "
                        "is the baseline of the ratio")
    parser.add_argument("--child", choices=sorted(SETTINGS), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        print("RESULT " + json.dumps(child(opts.child, opts)), flush=True)
        return
    load_before = uptime()
    names = [n.strip() for n in opts.settings.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETTINGS]
    if len(names) < 2 or unknown:
        parser.error(f"--settings needs two or more of {', '.join(SETTINGS)} (unknown: {', '.join(unknown) or '-'})")
    baseline, candidate = names[0], names[-1]
    results = {name: run_setting(name, opts) for name in names}
    load_after = uptime()
    steps_per_epoch = math.ceil(EPOCH_TRIPLETS / opts.batch_size)
    print(f"embedder training, batch {opts.batch_size}, {opts.max_length} tokens, {opts.steps} timed steps each")
    print(f"{'setting':<8} {'loss':<12} {'steps/s':>8} {'pairs/s':>8} {'peak RSS':>9} {'share of peak':>14} "
          f"{'SciFact epoch':>14}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<8} ERROR {r['error']}")
            continue
        r["epoch_seconds"] = steps_per_epoch / r["steps_per_second"]
        if r.get("idle_step_seconds_estimate"):
            r["idle_epoch_seconds_estimate"] = steps_per_epoch * r["idle_step_seconds_estimate"]
        print(f"{name:<8} {r['loss']:<12} {r['steps_per_second']:>8.3f} {r['pairs_per_second']:>8.2f} "
              f"{r['peak_rss_gib']:>7.2f}Gi {r['share_of_peak'] or 0:>14.3f} {r['epoch_seconds']:>12.0f} s"
              + (f"  (cut by the {opts.timeout}s timeout after {r['steps_finished']} steps)" if r.get("cut_by_timeout")
                 else ""))
    if all("error" not in r for r in results.values()):
        ratio = results[candidate]["pairs_per_second"] / results[baseline]["pairs_per_second"]
        epoch = results[candidate]["epoch_seconds"]
        print(f"{candidate} / {baseline} pairs/s: {ratio:.2f}x; SciFact epoch ({steps_per_epoch} steps) with "
              f"'{candidate}': "
              f"{epoch / 60:.1f} min (target <= {TARGET_EPOCH_SECONDS / 60:.0f} min: "
              f"{'met' if epoch <= TARGET_EPOCH_SECONDS else 'NOT met'})")
    for name, r in results.items():
        if r.get("idle_epoch_seconds_estimate"):
            print(f"{name}: {r['cpu_seconds_per_step']:.0f} CPU s per step; on an idle machine with "
                  f"{r['threads']} threads an epoch would take about {r['idle_epoch_seconds_estimate'] / 60:.1f} min "
                  "(CPU time / threads: an estimate; spinning OpenMP threads inflate it for 'old')")
    print(f"load before: {load_before}\nload after:  {load_after}\n"
          "the machine is shared: these figures are lower bounds for an idle machine")
    if opts.json:
        Path(opts.json).write_text(json.dumps({"results": results, "load_before": load_before,
                                               "load_after": load_after, "steps_per_epoch": steps_per_epoch}, indent=2))


if __name__ == "__main__":
    main()
