"""PyTorch backend: the same loader as evaluation (``searchtune.scoring.load_scorer``) so served scores equal the
scores eval measured; fp32, or bf16 where the CPU has AVX512-BF16/AMX (fp16/bf16 on GPU)."""

from __future__ import annotations

import numpy as np
import torch

from searchtune.scoring import ModelKind, load_scorer, resolve_precision
from searchtune.serve.backends.base import Backend


class TorchBackend(Backend):
    def _score(self, pairs: list[tuple[str, str]]) -> list[float]:
        self.model.batch_size = max(1, len(pairs))  # the batcher already sized the batch
        return self.model.score_pairs(pairs)

    def _embed(self, texts: list[str]) -> np.ndarray:
        self.model.batch_size = max(1, len(texts))
        return self.model.embed(texts).cpu().numpy()


def load_torch_backend(path: str, kind: ModelKind, precision: str = "auto", max_length: int = 512,
                       device: str | None = None) -> TorchBackend:
    scorer = load_scorer(path, kind=kind, precision=precision, device=device, max_length=max_length)
    dtype = resolve_precision(precision, scorer.model.device.type)
    return TorchBackend(kind=kind, backend="torch", precision={torch.float32: "fp32", torch.bfloat16: "bf16",
                                                                 torch.float16: "fp16"}[dtype],
                        device=str(scorer.model.device), max_length=scorer.max_length, path=path, model=scorer,
                        tokenizer=scorer.model.tokenizer)
