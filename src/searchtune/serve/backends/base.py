"""The backend interface and the choice of the fastest backend the hardware supports.

A backend turns a list of *units* into results: for a cross-encoder a unit is a ``(query, document)`` pair and the
result a relevance score; for an embedding model a unit is one text and the result its unit-length vector (so a
rerank served by an embedding model is a dot product of the query vector with each document vector).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from searchtune.scoring import ModelKind, cpu_supports_bf16, detect_model_kind

log = logging.getLogger(__name__)

BackendName = Literal["auto", "torch", "onnx"]
Unit = Any  # tuple[str, str] for cross-encoders, str for embedding models


class BackendError(RuntimeError):
    """The model could not be loaded or exported with the requested backend."""


@dataclass
class Backend:
    """A loaded model ready to score. ``run`` is called from one worker thread at a time."""

    kind: ModelKind
    backend: str
    precision: str
    device: str
    max_length: int
    path: str
    model: Any = field(repr=False)
    tokenizer: Any = field(repr=False)

    def __post_init__(self) -> None:
        # A private copy of the Rust tokenizer without truncation or padding: counting the real length of every
        # input is what lets the batcher sort by length, bound batches by tokens and count truncations.
        backend_tok = getattr(self.tokenizer, "backend_tokenizer", None)
        self._counter = copy.deepcopy(backend_tok) if backend_tok is not None else None
        if self._counter is not None:
            self._counter.no_truncation()
            self._counter.no_padding()

    def count_tokens(self, units: list[Unit]) -> list[int]:
        """Token length of each unit before truncation (special tokens included)."""
        if not units:
            return []
        if self._counter is not None:
            return [len(enc.ids) for enc in self._counter.encode_batch(units)]
        if self.kind == "cross-encoder":
            ids = self.tokenizer([q for q, _ in units], [d for _, d in units], truncation=False)["input_ids"]
        else:
            ids = self.tokenizer(list(units), truncation=False)["input_ids"]
        return [len(x) for x in ids]

    def run(self, units: list[Unit]) -> list[Any]:
        """Score pairs (cross-encoder) or embed texts (embedding model) in one forward pass."""
        if not units:
            return []
        if self.kind == "cross-encoder":
            return self._score(units)
        return list(self._embed(units))

    def warm(self) -> None:
        """Run a few batches of different lengths so first requests do not pay for lazy initialisation."""
        for n, words in ((1, 4), (8, 40), (32, 100)):
            text = " ".join(["warm"] * words)
            self.run([("warm query", text)] * n if self.kind == "cross-encoder" else [text] * n)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "backend": self.backend, "precision": self.precision, "device": self.device,
                "max_length": self.max_length}

    # Implemented by subclasses.
    def _score(self, pairs: list[tuple[str, str]]) -> list[float]:
        raise NotImplementedError

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        self.model = None


def has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(backend: BackendName = "auto", quantize: str | None = None, device: str | None = None) -> str:
    """``auto`` = the fastest backend this hardware supports, as measured by benchmarks/serve_bench.py: torch
    (bf16/fp16) on a GPU; torch bf16 on CPUs with AVX512-BF16 or AMX (on par with or faster than ONNX int8 there, and
    smaller in memory); ONNX Runtime dynamic int8 on other CPUs (2-3x torch fp32); torch when onnxruntime is
    missing. ``--quantize int8`` implies ONNX."""
    if backend != "auto":
        return backend
    if quantize == "int8":
        return "onnx"
    if (device or "").startswith("cuda") or (device is None and has_cuda()):
        return "torch"
    if cpu_supports_bf16():
        return "torch"
    return "onnx" if onnx_available() else "torch"


def load_backend(path: str | Path, backend: BackendName = "auto", precision: str = "auto",
                 quantize: str | None = "auto", max_length: int = 512, device: str | None = None,
                 kind: ModelKind | None = None) -> Backend:
    """Load ``path`` with the chosen backend. ``quantize='auto'`` means int8 for ONNX, none for torch."""
    path = str(path)
    kind = kind or detect_model_kind(path)
    chosen = choose_backend(backend, None if quantize == "auto" else quantize, device)
    if chosen == "onnx":
        from searchtune.serve.backends.onnx import load_onnx_backend

        if quantize not in ("auto", "int8", "none", None):
            raise BackendError(f"unknown quantization '{quantize}' (int8 or none)")
        q = None if quantize in ("none", None) else "int8"
        return load_onnx_backend(path, kind, quantize=q, max_length=max_length)
    if chosen == "torch":
        if quantize not in (None, "auto", "none"):
            raise BackendError(f"--quantize {quantize} needs --backend onnx (torch serves fp32/bf16/fp16)")
        from searchtune.serve.backends.torch import load_torch_backend

        return load_torch_backend(path, kind, precision=precision, max_length=max_length, device=device)
    raise BackendError(f"unknown backend '{backend}' (torch, onnx or auto)")
