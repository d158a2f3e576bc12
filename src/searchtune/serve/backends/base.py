"""The backend interface and the choice of the fastest backend the hardware supports.

A backend runs the model on already tokenized inputs (:class:`~searchtune.serve.tokens.Encoded`): the batcher's
encodings are padded into one tensor batch and fed to the model directly, so nothing is tokenized twice. For a
cross-encoder the result of an input is its raw logits; for an embedding model its pooled vector *before* any
``Normalize`` module (the engine normalizes unless the caller asked for raw vectors), or its per-token vectors.
"""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from searchtune.scoring import ModelKind, cpu_supports_bf16, detect_model_kind
from searchtune.serve.model_card import ModelCard, read_model_card
from searchtune.serve.tokens import Encoded, InputTokenizer

log = logging.getLogger(__name__)

BackendName = Literal["auto", "torch", "onnx", "openvino"]

#: Batches below this many padded tokens (inputs x longest input: a search's query embedding) are latency work:
#: on CPU they run where reading the weights, not arithmetic, is the cost (torch: fp32 without autocast's per-call
#: weight casts; OpenVINO: int8-compressed weights, see backends/openvino.py).
SMALL_BATCH_TOKENS = int(os.environ.get("SEARCHTUNE_SERVE_SMALL_BATCH_TOKENS", "128"))


class BackendError(RuntimeError):
    """The model could not be loaded or exported with the requested backend."""


@dataclass(frozen=True)
class TokenLevel(Encoded):
    """An input whose per-token vectors are wanted (TEI ``/embed_all``) instead of the pooled one."""


@dataclass
class Backend:
    """A loaded model ready to score. ``run`` is called from one worker thread at a time."""

    kind: ModelKind
    backend: str
    precision: str
    device: str
    max_length: int
    path: str
    model: Any = field(repr=False)  # the sentence-transformers CrossEncoder / SentenceTransformer
    hf_tokenizer: Any = field(repr=False)
    card: ModelCard = field(default_factory=ModelCard)

    def __post_init__(self) -> None:
        self.has_normalize = False
        self.tokenizer = InputTokenizer(self.hf_tokenizer, self.max_length)
        self._pad_id = self.hf_tokenizer.pad_token_id or 0
        self._uses_type_ids = "token_type_ids" in getattr(self.hf_tokenizer, "model_input_names", ())
        if self.kind == "embedding":
            self._modules = [m for m in self.model if type(m).__name__ != "Normalize"]
            self.has_normalize = len(self._modules) < len(self.model)
            self.card = replace(self.card, dimension=int(self.model.get_embedding_dimension() or 0),
                                prompts=dict(getattr(self.model, "prompts", None) or {}))
        else:
            config = self.model.model.config
            self.card = replace(self.card, labels={int(k): v for k, v in (config.id2label or {}).items()})

    # ------------------------------------------------------------------ running
    def run(self, units: list[Encoded]) -> list[Any]:
        """Results in input order: logits rows (cross-encoder), pooled vectors or per-token vectors (embedding)."""
        if not units:
            return []
        features, lengths = self._features(units)
        with self._context(len(units) * max(lengths)):
            if self.kind == "cross-encoder":
                logits = self._logits(features)
                return list(np.asarray(logits, dtype=np.float32))
            out = features
            for module in self._modules:
                out = module(out)
            pooled = out["sentence_embedding"].float().cpu().numpy()
            tokens = out["token_embeddings"] if any(isinstance(u, TokenLevel) for u in units) else None
        results: list[Any] = []
        for i, unit in enumerate(units):
            if isinstance(unit, TokenLevel) and tokens is not None:
                results.append(tokens[i, :lengths[i]].float().cpu().numpy())
            else:
                results.append(pooled[i])
        return results

    def _features(self, units: list[Encoded]) -> tuple[dict[str, torch.Tensor], list[int]]:
        lengths = [u.tokens for u in units]
        width = max(lengths)
        ids = np.full((len(units), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(units), width), dtype=np.int64)
        types = np.zeros((len(units), width), dtype=np.int64)
        for i, unit in enumerate(units):
            ids[i, :lengths[i]] = unit.ids
            mask[i, :lengths[i]] = 1
            types[i, :lengths[i]] = unit.type_ids
        features = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        if self._uses_type_ids:
            features["token_type_ids"] = torch.from_numpy(types)
        return {k: v.to(self.device) for k, v in features.items()}, lengths

    def _logits(self, features: dict[str, torch.Tensor]) -> np.ndarray:
        logits = self.model.model(**features).logits
        return logits.float().cpu().numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits)

    def _context(self, padded_tokens: int) -> AbstractContextManager:
        """How a batch of ``padded_tokens`` (inputs x longest) runs; backends may pick precision by batch size."""
        return torch.inference_mode()

    def warm(self) -> None:
        """Run a few batches of different lengths so first requests do not pay for lazy initialisation."""
        for n, words in ((1, 4), (8, 40), (32, 100)):
            text = " ".join(["warm"] * words)
            if self.kind == "cross-encoder":
                self.run(self.tokenizer.pairs("warm query", [text] * n))
            else:
                self.run(self.tokenizer.texts([text] * n))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "backend": self.backend, "precision": self.precision, "device": self.device,
                "max_length": self.max_length, **self.card.describe(self.kind)}

    def close(self) -> None:
        self.model = None
        self._modules = []


def has_cuda() -> bool:
    return torch.cuda.is_available()


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(backend: BackendName = "auto", quantize: str | None = None, device: str | None = None,
                   kind: ModelKind | None = None) -> str:
    """``auto`` = the fastest backend this hardware supports *without losing accuracy*, as measured by
    benchmarks/serve_bench.py and benchmarks/hybrid_profile.py: torch (bf16/fp16) on a GPU; OpenVINO on CPUs with
    AVX512-BF16 or AMX when openvino is installed, else torch bf16 there; ONNX Runtime fp32 on other CPUs (fused
    kernels, exact); torch fp32 when onnxruntime is missing.
    OpenVINO serves both kinds: a cross-encoder's 50-pair batches run bf16 AMX kernels (about 1.5x torch autocast,
    NDCG@10 within 0.005 of fp32); an embedding model's documents run the same, and its queries run int8-compressed
    weights on one thread (backends/openvino.py): through the gateway a hybrid search's query embedding took 22 ms
    p50 against torch's 70 ms, beside a running BM25 search on 2 cores (docs/serving.md). The price is a one-time
    ONNX export per model version (cached) before it first answers.
    Dynamic int8 lost 0.018 NDCG@10 on SciFact, so it is never chosen by ``auto``: ``--quantize int8`` asks for it
    (and implies ONNX)."""
    if backend != "auto":
        return backend
    if quantize == "int8":
        return "onnx"
    if (device or "").startswith("cuda") or (device is None and has_cuda()):
        return "torch"
    if cpu_supports_bf16():
        from searchtune.serve.backends.openvino import openvino_available

        return "openvino" if openvino_available() else "torch"
    return "onnx" if onnx_available() else "torch"


def load_backend(path: str | Path, backend: BackendName = "auto", precision: str = "auto",
                 quantize: str | None = "auto", max_length: int = 512, device: str | None = None,
                 kind: ModelKind | None = None) -> Backend:
    """Load ``path`` with the chosen backend. ``quantize='auto'`` means none (fp32 ONNX, or torch's precision)."""
    path = str(path)
    kind = kind or detect_model_kind(path)
    card = read_model_card(path)
    chosen = choose_backend(backend, None if quantize == "auto" else quantize, device, kind)
    if chosen == "onnx":
        from searchtune.serve.backends.onnx import load_onnx_backend

        if quantize not in ("auto", "int8", "none", None):
            raise BackendError(f"unknown quantization '{quantize}' (int8 or none)")
        q = "int8" if quantize == "int8" else None
        return load_onnx_backend(path, kind, quantize=q, max_length=max_length, card=card)
    if chosen == "openvino":
        if quantize not in (None, "auto", "none"):
            raise BackendError(f"--quantize {quantize} needs --backend onnx (openvino serves fp32/bf16)")
        from searchtune.serve.backends.openvino import load_openvino_backend

        return load_openvino_backend(path, kind, precision=precision, max_length=max_length, card=card)
    if chosen == "torch":
        if quantize not in (None, "auto", "none"):
            raise BackendError(f"--quantize {quantize} needs --backend onnx (torch serves fp32/bf16/fp16)")
        from searchtune.serve.backends.torch import load_torch_backend

        return load_torch_backend(path, kind, precision=precision, max_length=max_length, device=device, card=card)
    raise BackendError(f"unknown backend '{backend}' (torch, onnx, openvino or auto)")

