"""What a request asks of the pinned model: tokenize (in a worker thread), check limits, batch, and shape results.

Why here and not in the routes: every dialect asks the same few things (rerank, embed, classify, per-token
vectors), so the limits (``truncate: false`` over the limit is 413), prompts and token accounting are decided once.
Raw model outputs come back (logits, un-normalized vectors); :mod:`searchtune.serve.vectors` maps them to what
each API documents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from searchtune.serve.backends.base import TokenLevel
from searchtune.serve.engine import LoadedModel
from searchtune.serve.tokens import Direction, Encoded
from searchtune.serve.vectors import unit_rows


class UnsupportedKind(RuntimeError):
    """The served model cannot do what the route asks (embeddings of a cross-encoder)."""


class InputTooLong(ValueError):
    """An input over the model's max length when the caller asked not to truncate."""

    def __init__(self, index: int, length: int, limit: int):
        super().__init__(f"input {index} has {length} tokens, over the model's max_length={limit}, and the request "
                         f"asked not to truncate")
        self.index, self.length, self.limit = index, length, limit


class UnknownPrompt(ValueError):
    pass


@dataclass
class Scored:
    scores: list[float]  # raw: logits of a cross-encoder, cosine of an embedding model
    tokens: int


@dataclass
class Embedded:
    vectors: np.ndarray  # (n, dim) pooled, before normalization
    tokens: int


def _require(model: LoadedModel, kind: str, what: str) -> None:
    if model.kind != kind:
        raise UnsupportedKind(f"the served model is a {model.kind}; {what} needs a {kind} model")


def prompt_text(model: LoadedModel, name: str | None, strict: bool = False) -> str:
    """The prefix the model declares for ``name`` (e.g. ``query``); '' when it has none. ``strict``: an unknown
    name is an error (TEI's ``prompt_name``) rather than "this model needs no prompt" (Cohere's ``input_type``)."""
    prompts = model.backend.card.prompts
    if name is None:
        return ""
    if name in prompts:
        return prompts[name]
    if strict:
        raise UnknownPrompt(f"prompt_name '{name}' is not one of this model's prompts: {sorted(prompts) or 'none'}")
    return ""


#: Requests with less text than this are tokenized on the event loop: a search's query (tens of characters)
#: tokenizes in microseconds, while the hop to a worker thread and back cost it milliseconds on a busy 2-core box.
INLINE_TOKENIZE_CHARS = 8192


async def _encode(model: LoadedModel, work: Callable[[], list[Encoded]], truncate: bool, chars: int) -> list[Encoded]:
    if chars <= INLINE_TOKENIZE_CHARS:
        units = work()
    else:
        with model.batcher.expecting():  # the batcher may wait a moment for these units
            units = await asyncio.to_thread(work)  # tokenizers release the GIL: the event loop keeps answering
    if not truncate:
        for i, unit in enumerate(units):
            if unit.length > model.backend.max_length:
                raise InputTooLong(i, unit.length, model.backend.max_length)
    return units


def _account(model: LoadedModel, metrics, units: list[Encoded]) -> int:
    total = sum(u.length for u in units)
    metrics.tokens.inc(total)
    metrics.truncations.inc(sum(1 for u in units if u.length > model.backend.max_length))
    metrics.documents.inc(len(units))
    return total


async def rerank(model: LoadedModel, metrics, query: str, documents: list[str], truncate: bool = True,
                 direction: Direction = "right") -> Scored:
    """One raw score per document, in input order: cross-encoder logits, or cosine of an embedding model."""
    if not documents:
        return Scored([], 0)
    tok = model.backend.tokenizer
    if model.kind == "cross-encoder":
        units = await _encode(model, lambda: tok.pairs(query, documents, direction), truncate,
                              len(query) * len(documents) + sum(map(len, documents)))
        logits = await model.batcher.submit(units)
        return Scored([float(row[0]) for row in logits], _account(model, metrics, units))
    q_prefix, d_prefix = prompt_text(model, "query"), prompt_text(model, "document")
    units = await _encode(model, lambda: tok.texts([q_prefix + query] + [d_prefix + d for d in documents],
                                                   direction), truncate, len(query) + sum(map(len, documents)))
    vectors = unit_rows(np.asarray(await model.batcher.submit(units), dtype=np.float32))
    return Scored((vectors[1:] @ vectors[0]).tolist(), _account(model, metrics, units))


async def embed(model: LoadedModel, metrics, texts: list[str] | None = None, token_ids: list[list[int]] | None = None,
                prompt: str = "", truncate: bool = True, direction: Direction = "right") -> Embedded:
    _require(model, "embedding", "embeddings")
    tok = model.backend.tokenizer
    if token_ids is not None:
        work = lambda: tok.token_ids(token_ids, direction)  # noqa: E731
        chars = sum(map(len, token_ids)) * 4
    else:
        work = lambda: tok.texts([prompt + t for t in texts or []], direction)  # noqa: E731
        chars = sum(len(prompt) + len(t) for t in texts or [])
    units = await _encode(model, work, truncate, chars)
    if not units:
        return Embedded(np.zeros((0, model.backend.card.dimension), dtype=np.float32), 0)
    vectors = np.asarray(await model.batcher.submit(units), dtype=np.float32)
    return Embedded(vectors, _account(model, metrics, units))


async def token_vectors(model: LoadedModel, metrics, texts: list[str], truncate: bool = True) -> list[np.ndarray]:
    """Per-token vectors of each text (TEI ``/embed_all``), special tokens included, padding excluded."""
    _require(model, "embedding", "per-token embeddings")
    tok = model.backend.tokenizer
    units = await _encode(model, lambda: [TokenLevel(u.ids, u.type_ids, u.length) for u in tok.texts(texts)],
                          truncate, sum(map(len, texts)))
    out = await model.batcher.submit(units)
    _account(model, metrics, units)
    return out


async def classify(model: LoadedModel, metrics, inputs: list[str | tuple[str, str]], truncate: bool = True
                   ) -> tuple[np.ndarray, int]:
    """Raw logits (n, labels) of a cross-encoder for single texts or (text, text) pairs (TEI ``/predict``)."""
    _require(model, "cross-encoder", "classification")
    tok = model.backend.tokenizer

    def work() -> list[Encoded]:
        return [tok.pairs(x[0], [x[1]])[0] if isinstance(x, tuple) else tok.texts([x])[0] for x in inputs]

    units = await _encode(model, work, truncate, sum(len(x[0]) + len(x[1]) if isinstance(x, tuple) else len(x)
                                                     for x in inputs))
    if not units:
        return np.zeros((0, 1), dtype=np.float32), 0
    logits = np.asarray(await model.batcher.submit(units), dtype=np.float32)
    return logits, _account(model, metrics, units)

