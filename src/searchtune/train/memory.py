"""Plain or cached MNRL: a documented estimate of the training peak memory decides.

Cached MNRL (GradCache) gives the same loss and gradients as MNRL but embeds every batch twice (once without
gradients, then again chunk by chunk with them), about a third more compute. It is only worth it when plain MNRL's
activations do not fit. The estimate (docs/training.md):

    peak ≈ runtime + 16 B x parameters + activation_bytes x tokens in flight x layers x hidden size

- ``runtime``: Python, torch, the tokenizer and the data (measured 1.1 GB RSS before the first step);
- 16 bytes per parameter: fp32 weights, gradients and AdamW's two moments;
- ``tokens in flight``: rows whose activations are kept for the backward pass: the whole batch for MNRL, one
  mini-batch for cached MNRL, each row being a query plus ``1 + negatives`` passages at ``max_length`` tokens;
- ``activation_bytes``: kept activations per token, layer and hidden unit, measured with all-MiniLM-L6-v2 in bf16
  autocast at 32 x (query + 2 x 256 tokens): 4.0 GB peak RSS with attention dropout off (PyTorch's fused attention
  keeps no attention matrix), 8.5 GB with it on (the attention probabilities and their dropout masks are kept).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

RUNTIME_BYTES = 1.1e9
BYTES_PER_PARAMETER = 16
#: Kept activation bytes per token x layer x hidden unit (measured, see the module docstring).
ACTIVATION_BYTES = {"fused_attention": 72.0, "attention_dropout": 185.0}
#: Query tokens assumed per row (SciFact claims: median 21, max 79 word pieces).
QUERY_TOKENS = 48
#: Default share of physical memory a training run may plan to use when no budget is given.
DEFAULT_MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class MemoryPlan:
    loss: str
    estimate_gib: float
    plain_mnrl_gib: float
    budget_gib: float
    rule: str

    def as_record(self) -> dict:
        return asdict(self)


def physical_memory_gib() -> float:
    """Installed memory (not what is free now, so the choice never depends on what else is running)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return 8.0


def return_freed_memory(after: str) -> int:
    """Collect garbage and hand the heap pages it freed back to the OS; returns the bytes this process's RSS shrank.

    Call it in a process that goes on working after a training run has returned (the quickstart, ``train embed``'s
    stack choice): glibc keeps a finished trainer's freed tensors (gigabytes of activations and optimizer state) in
    its arenas, and the next stages then start on top of that heap. Measured in the quickstart on SciFact with plain
    MNRL: 2.38 GiB returned; without it the run's used memory reached 6.67 GiB when the model server started,
    against 5.2 GiB while training. ``malloc_trim`` is glibc's; elsewhere only the collection runs."""
    import ctypes
    import ctypes.util
    import gc

    import psutil

    before = psutil.Process().memory_info().rss
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        try:
            ctypes.CDLL(libc_name).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass
    released = max(0, before - psutil.Process().memory_info().rss)
    log.info("returned %.2f GiB of freed memory to the OS after %s", released / 2**30, after)
    return released


def estimate_peak_gib(*, parameters: int, layers: int, hidden: int, rows_in_flight: int, passages_per_row: int,
                      max_length: int, fused_attention: bool) -> float:
    tokens = rows_in_flight * (min(QUERY_TOKENS, max_length) + passages_per_row * max_length)
    per_unit = ACTIVATION_BYTES["fused_attention" if fused_attention else "attention_dropout"]
    total = RUNTIME_BYTES + BYTES_PER_PARAMETER * parameters + per_unit * tokens * layers * hidden
    return total / 2**30


def plan_embed_loss(model, *, requested: str, batch_size: int, mini_batch_size: int, num_negatives: int,
                    max_length: int, attention_dropout: float | None, budget_gib: float | None) -> MemoryPlan:
    """``requested`` 'auto' picks plain MNRL when its estimate fits ``budget_gib``, else cached MNRL."""
    config = model[0].auto_model.config
    layers = int(getattr(config, "num_hidden_layers", 12))
    hidden = int(getattr(config, "hidden_size", 768))
    model_dropout = float(getattr(config, "attention_probs_dropout_prob", 0.0) or 0.0)
    fused = (attention_dropout if attention_dropout is not None else model_dropout) == 0.0
    parameters = sum(p.numel() for p in model.parameters())
    common = dict(parameters=parameters, layers=layers, hidden=hidden, passages_per_row=1 + num_negatives,
                  max_length=max_length, fused_attention=fused)
    plain = estimate_peak_gib(rows_in_flight=batch_size, **common)
    cached = estimate_peak_gib(rows_in_flight=min(mini_batch_size, batch_size), **common)
    budget = budget_gib if budget_gib is not None else DEFAULT_MEMORY_SHARE * physical_memory_gib()
    if requested != "auto":
        loss, rule = requested, "asked for"
    elif plain <= budget:
        loss, rule = "mnrl", f"plain MNRL fits: {plain:.1f} GiB <= budget {budget:.1f} GiB"
    else:
        loss, rule = "cached-mnrl", f"plain MNRL would need {plain:.1f} GiB > budget {budget:.1f} GiB"
    estimate = plain if loss == "mnrl" else cached
    log.info("loss %s (%s); estimated training peak %.1f GiB", loss, rule, estimate)
    return MemoryPlan(loss=loss, estimate_gib=round(estimate, 2), plain_mnrl_gib=round(plain, 2),
                      budget_gib=round(budget, 2), rule=rule)
