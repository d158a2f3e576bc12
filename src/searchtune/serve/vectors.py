"""From raw model outputs to what each API documents: 0..1 relevance, unit vectors, Matryoshka truncation and
compressed embedding types.

Relevance mapping (Cohere and DashScope document ``relevance_score`` in 0..1): a cross-encoder's logit goes through
the sigmoid (what sentence-transformers applies to one-logit rerankers, so the value equals eval's score); an
embedding model's cosine ``c`` becomes ``(1 + c) / 2``. Both are monotonic, so the order never changes. TEI's
``raw_scores: true`` returns the logit (cosine for an embedding model).

int8/uint8 (Cohere ``embedding_types``): symmetric scalar quantization of the *unit* vector with one fixed range per
model dimension, ``c = min(1, 8 / sqrt(dim))`` (8 standard deviations of a random unit vector's component), so
``int8 = round(clip(v, -c, c) * 127 / c)``: dot products of int8 vectors are proportional to cosine (no per-vector
or per-batch scale that would make two calls incomparable). binary/ubinary pack the sign bits (``v > 0``), as
Cohere and sentence-transformers do; binary is the packed byte minus 128.
"""

from __future__ import annotations

import base64
import math

import numpy as np

from searchtune.serve.model_card import ModelCard

EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")


class DimensionsRefused(ValueError):
    pass


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def sigmoid(values: list[float]) -> list[float]:
    return [1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v)) for v in values]


def relevance_0_1(kind: str, raw: list[float]) -> list[float]:
    """Cohere/DashScope ``relevance_score``: sigmoid(logit) or (1 + cosine) / 2."""
    if kind == "cross-encoder":
        return sigmoid(raw)
    return [min(1.0, max(0.0, (1.0 + c) / 2.0)) for c in raw]


def tei_scores(kind: str, raw: list[float], raw_scores: bool) -> list[float]:
    """TEI ``/rerank`` (and Elasticsearch/Alibaba callers): sigmoid(logit) unless ``raw_scores``; cosine as is."""
    return sigmoid(raw) if kind == "cross-encoder" and not raw_scores else list(raw)


def shape(vectors: np.ndarray, card: ModelCard, normalize: bool = True, dimensions: int | None = None) -> np.ndarray:
    """Truncate to ``dimensions`` (Matryoshka models only) and normalize unless the caller asked for raw vectors."""
    if dimensions is not None:
        full = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[0] else card.dimension
        if not card.matryoshka:
            raise DimensionsRefused(f"dimensions={dimensions} needs a model trained with a Matryoshka loss; this "
                                    f"one declares none (its vectors have {full} dimensions and are returned whole)")
        if not 1 <= dimensions <= full:
            raise DimensionsRefused(f"dimensions={dimensions} is outside 1..{full} for this model")
        vectors = vectors[:, :dimensions]
    return unit_rows(vectors) if normalize else vectors


def int8_range(dim: int) -> float:
    return min(1.0, 8.0 / math.sqrt(max(dim, 1)))


def encode_as(vectors: np.ndarray, kind: str) -> list:
    """``vectors`` (float32, unit rows for the quantized kinds) in one of :data:`EMBEDDING_TYPES`."""
    if kind == "float":
        return vectors.astype(np.float32).tolist()
    if kind == "base64":
        return [base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode() for v in vectors]
    unit = unit_rows(vectors)
    if kind in ("int8", "uint8"):
        c = int8_range(unit.shape[1])
        q = np.rint(np.clip(unit, -c, c) * (127.0 / c)).astype(np.int16)
        return (q if kind == "int8" else q + 128).tolist()
    if kind in ("binary", "ubinary"):
        packed = np.packbits(unit > 0, axis=1).astype(np.int16)
        return (packed - 128 if kind == "binary" else packed).tolist()
    raise ValueError(f"unknown embedding type {kind!r}; expected one of {', '.join(EMBEDDING_TYPES)}")
