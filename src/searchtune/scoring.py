"""In-process relevance scoring with either kind of model: the one place that knows how to score (query, doc).

A cross-encoder scores each pair jointly; an embedding (bi-encoder) model scores by cosine similarity of the query
and document embeddings, so both kinds can rerank. Evaluation, training-time dev metrics and the torch serving
backend all go through :func:`load_scorer` so a model scores identically everywhere.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import torch

from searchtune.models import resolve_model

log = logging.getLogger(__name__)

ModelKind = Literal["cross-encoder", "embedding"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]


class Scorer(Protocol):
    kind: ModelKind
    name: str
    max_length: int

    def score(self, query: str, documents: list[str]) -> list[float]: ...

    def score_pairs(self, pairs: list[tuple[str, str]]) -> list[float]: ...


def detect_model_kind(name_or_path: str) -> ModelKind:
    """Cross-encoder when the saved config is a sequence-classification head, else an embedding model."""
    config = Path(name_or_path) / "config.json"
    if config.is_file():
        archs = json.loads(config.read_text()).get("architectures") or []
        if any("ForSequenceClassification" in arch for arch in archs):
            return "cross-encoder"
        return "embedding"
    return "cross-encoder" if any(word in name_or_path.lower() for word in ("cross-encoder", "rerank")) else "embedding"


def cpu_supports_bf16() -> bool:
    """AVX512-BF16 or AMX make bf16 matmuls fast on CPU; without them bf16 is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: Precision, device: str) -> torch.dtype:
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def fp32_head(cross_encoder: object) -> object:
    """Run a cross-encoder's classification head in fp32, outside any bf16/fp16 autocast (in place; idempotent).

    Under bf16 autocast the head's output has 8 significant bits: a weak model's logits (the issue measured
    -1.89..-1.70 on 20 SciFact documents) then collapse into ties (14 distinct values of 20), and ties are broken
    differently by every consumer. The body keeps the fast AMX/GPU bf16 matmuls; only the last small layer runs in
    fp32, so every ranking (eval, training dev metrics, the served scores) sees distinct scores. The forward is
    replaced on the instance, so the saved weights and their names are unchanged.
    """
    inner = getattr(cross_encoder, "model", cross_encoder)
    body = getattr(inner, getattr(inner, "base_model_prefix", ""), None)
    heads = [getattr(inner, name, None) for name in ("classifier", "score")] + [getattr(body, "pooler", None)]
    for head in heads:
        if isinstance(head, torch.nn.Module) and not getattr(head, "_searchtune_fp32", False):
            head.forward = _in_fp32(head.forward)
            head._searchtune_fp32 = True
    return cross_encoder


def _in_fp32(forward):
    def fp32_forward(hidden, *args, **kwargs):
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            return forward(hidden.float(), *args, **kwargs)

    return fp32_forward


@dataclass
class CrossEncoderScorer:
    model: object
    name: str
    dtype: torch.dtype
    batch_size: int = 32
    kind: ModelKind = "cross-encoder"

    @property
    def max_length(self) -> int:
        return int(self.model.max_length or 512)

    def score_pairs(self, pairs: list[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        with torch.inference_mode(), _autocast(self.model.device.type, self.dtype):
            scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False,
                                        convert_to_numpy=True)
        return [float(s) for s in scores.reshape(len(pairs), -1)[:, 0]]

    def score(self, query: str, documents: list[str]) -> list[float]:
        return self.score_pairs([(query, doc) for doc in documents])


@dataclass
class EmbeddingScorer:
    model: object
    name: str
    dtype: torch.dtype
    batch_size: int = 32
    kind: ModelKind = "embedding"

    @property
    def max_length(self) -> int:
        return int(self.model.max_seq_length or 512)

    def embed(self, texts: list[str]) -> torch.Tensor:
        with torch.inference_mode(), _autocast(self.model.device.type, self.dtype):
            vectors = self.model.encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                        normalize_embeddings=True, show_progress_bar=False)
        return vectors.float()

    def score(self, query: str, documents: list[str]) -> list[float]:
        if not documents:
            return []
        vectors = self.embed([query, *documents])
        return (vectors[1:] @ vectors[0]).tolist()

    def score_pairs(self, pairs: list[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        queries = sorted({q for q, _ in pairs})
        qvec = dict(zip(queries, self.embed(queries)))
        dvec = self.embed([d for _, d in pairs])
        return [float(dvec[i] @ qvec[q]) for i, (q, _) in enumerate(pairs)]


class _autocast:
    """bf16/fp16 autocast when asked for, a no-op for fp32 (autocast on CPU only supports bf16)."""

    def __init__(self, device_type: str, dtype: torch.dtype):
        enabled = dtype != torch.float32 and (device_type == "cuda" or dtype == torch.bfloat16)
        self._ctx = torch.autocast(device_type=device_type, dtype=dtype, enabled=enabled)

    def __enter__(self):
        return self._ctx.__enter__()

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def scorer_for_model(model: object, kind: ModelKind, dtype: torch.dtype = torch.float32,
                     batch_size: int = 32, name: str = "in-memory") -> Scorer:
    """A scorer around an already loaded CrossEncoder/SentenceTransformer (the model being trained, for its dev
    evaluation), so it scores exactly as the loaded model will, autocast included."""
    if kind == "cross-encoder":
        return CrossEncoderScorer(model=fp32_head(model), name=name, dtype=dtype, batch_size=batch_size)
    return EmbeddingScorer(model=model, name=name, dtype=dtype, batch_size=batch_size)


def load_scorer(name_or_path: str | None, kind: ModelKind | None = None, precision: Precision = "auto",
                device: str | None = None, max_length: int | None = 256, batch_size: int = 32) -> Scorer:
    """Load any HF name or local path as a scorer. ``kind`` overrides detection; ``max_length`` truncates inputs."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    path = resolve_model(name_or_path)
    kind = kind or detect_model_kind(path)
    device = device or default_device()
    dtype = resolve_precision(precision, device)
    log.info("loading %s %s on %s (%s)", kind, path, device, str(dtype).replace("torch.", ""))
    if kind == "cross-encoder":
        model = CrossEncoder(path, device=device, max_length=max_length)
        model.model.eval()
    else:
        model = SentenceTransformer(path, device=device)
        if max_length:
            model.max_seq_length = max_length
        model.eval()
    return scorer_for_model(model, kind, dtype, batch_size, name=path)
