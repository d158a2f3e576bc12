"""How fast training runs compared with what the CPU (or GPU) could do, and the settings that get it closer.

- Threads: one intra-op thread per core this process may run on, one inter-op thread. Fixed from the CPU set,
  never from the current load, so the same command computes the same sums in the same order on a busy machine
  (reductions split over a different number of threads round differently).
- Attention dropout off by default: PyTorch's fused CPU attention kernel only runs without it, and with it every
  layer keeps its attention probabilities and dropout masks for the backward pass (2x the activation memory,
  see :mod:`searchtune.train.memory`). Hidden-state dropout stays.
- The record: pairs/s, tokens/s, and achieved model FLOP/s as a share of an estimated peak. Model FLOPs follow the
  usual transformer count (Kaplan et al. 2020; PaLM appendix B): per token ``6 N`` for forward + backward through
  ``N`` non-embedding parameters, plus ``12 L h s`` for attention over a sequence of ``s`` tokens, counting only
  real (non-padding) tokens; cached MNRL's extra no-gradient forward pass is not useful work, so it lowers the
  share. The peak is measured, not looked up: the best of a few large matrix products in the training dtype on
  this process's threads, timed at the end of the run (docs/training.md).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import torch

log = logging.getLogger(__name__)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_threads(threads: int | None = None) -> int:
    """Pin torch's thread pools (see the module docstring); returns the intra-op thread count."""
    count = threads or usable_cores()
    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already started (set once per process)
        pass
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return count


def set_attention_dropout(model, probability: float | None) -> int:
    """Set attention-probability dropout on every attention module in ``model``; returns modules changed.

    Only the modules change, not the saved config: the published model is the base architecture as it was.
    """
    if probability is None:
        return 0
    changed = 0
    for name, module in model.named_modules():
        if hasattr(module, "dropout_prob") and "attention" in name:  # SDPA attention reads this attribute
            module.dropout_prob = probability
            changed += 1
        elif isinstance(module, torch.nn.Dropout) and name.endswith("attention.self.dropout"):
            module.p = probability
            changed += 1
    return changed


def _transformer_config(model):
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "num_hidden_layers"):
            return config
    return None


def non_embedding_parameters(model) -> int:
    embeddings = sum(p.numel() for name, p in model.named_parameters() if "embeddings" in name)
    return sum(p.numel() for p in model.parameters()) - embeddings


def model_flops(model, tokens: int, attention_pairs: int) -> float:
    """Useful forward + backward FLOPs for ``tokens`` real tokens whose squared sequence lengths sum to
    ``attention_pairs`` (module docstring)."""
    config = _transformer_config(model)
    layers = int(getattr(config, "num_hidden_layers", 0)) if config else 0
    hidden = int(getattr(config, "hidden_size", 0)) if config else 0
    return 6.0 * non_embedding_parameters(model) * tokens + 12.0 * layers * hidden * attention_pairs


def measured_peak_flops(bf16: bool, size: int = 1024, repeats: int = 5) -> float:
    """Best FLOP/s of ``size``-cubed matrix products in the training dtype (on CUDA when available)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if bf16 else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    with torch.inference_mode():
        torch.mm(a, b)  # first call builds the kernel
        for _ in range(repeats):
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            torch.mm(a, b)
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best


def throughput_record(model, *, seconds: float, steps: int, pairs: int, tokens: int | None,
                      attention_pairs: int | None, bf16: bool, threads: int) -> dict[str, Any]:
    """Figures for training.json (see the module docstring for what each means)."""
    record: dict[str, Any] = {"steps": steps, "seconds": round(seconds, 2), "threads": threads,
                              "steps_per_second": round(steps / seconds, 4) if seconds else None,
                              "pairs_per_second": round(pairs / seconds, 2) if seconds else None}
    if tokens and seconds:
        achieved = model_flops(model, tokens, attention_pairs or 0) / seconds
        peak = measured_peak_flops(bf16)
        record |= {"tokens_per_second": round(tokens / seconds, 1), "model_tflops_per_second": round(achieved / 1e12, 4),
                   "peak_tflops_estimate": round(peak / 1e12, 3), "share_of_peak": round(achieved / peak, 4),
                   "peak_method": f"best of 5 {'bf16' if bf16 else 'fp32'} 1024^3 matmuls on {threads} threads"}
    return record
