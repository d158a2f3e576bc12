"""PyTorch backend: the same loader as evaluation (``searchtune.scoring.load_scorer``) so served scores equal the
scores eval measured; fp32, or bf16 where the CPU has AVX512-BF16/AMX (fp16/bf16 on GPU).

bf16 runs under autocast exactly as eval does: on AMX CPUs oneDNN then runs every linear layer on the tile units
(``brg_matmul:avx10_1_512_amx`` in ``ONEDNN_VERBOSE``), which is where the 2-3x over fp32 comes from.

Autocast casts every weight matrix to bf16 on every call, which costs more than it saves on a tiny batch: one
12-token query took 10.9 ms in fp32 and 15.9 ms under bf16 autocast on 2 AMX cores (the break-even lies near 128
padded tokens; 256 tokens: 51.7 vs 40.7 ms, 50 x 256: bf16 2.5x faster). So on CPU a batch below
``SMALL_BATCH_TOKENS`` padded tokens (a search's query embedding) runs in fp32 - the more exact precision, so
scores can only move towards the fp32 reference - and everything larger under bf16 autocast.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack

import torch

from searchtune.scoring import ModelKind, _autocast, load_scorer, resolve_precision
from searchtune.serve.backends.base import SMALL_BATCH_TOKENS, Backend
from searchtune.serve.model_card import ModelCard

PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


#: Below this many padded tokens per batch a CPU runs fp32 even when the backend is bf16 (see the module docstring).


class TorchBackend(Backend):
    dtype: torch.dtype = torch.float32

    def _context(self, padded_tokens: int) -> AbstractContextManager:
        stack = ExitStack()
        stack.enter_context(torch.inference_mode())
        device = self.device.split(":")[0]
        if not (device == "cpu" and padded_tokens < SMALL_BATCH_TOKENS):
            stack.enter_context(_autocast(device, self.dtype))
        return stack


def load_torch_backend(path: str, kind: ModelKind, precision: str = "auto", max_length: int = 512,
                       device: str | None = None, card: ModelCard | None = None) -> TorchBackend:
    scorer = load_scorer(path, kind=kind, precision=precision, device=device, max_length=max_length)
    model = scorer.model
    dtype = resolve_precision(precision, model.device.type)
    backend = TorchBackend(kind=kind, backend="torch", precision=PRECISION_NAMES[dtype], device=str(model.device),
                           max_length=scorer.max_length, path=path, model=model, hf_tokenizer=model.tokenizer,
                           card=card or ModelCard())
    backend.dtype = dtype
    return backend
