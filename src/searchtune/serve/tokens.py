"""Tokenization, done once per input, off the event loop.

Why: the batcher needs every input's real length (to sort by length, bound batches by padded tokens and count
truncations) and the model needs token ids. Tokenizing once for both halves the CPU spent on tokenization and lets
the backend run the model straight from ids (no second pass inside sentence-transformers). The Rust tokenizer
releases the GIL, so the engine calls this module from a worker thread and the event loop keeps answering.

Inputs are encoded without special tokens, measured, then truncated and given their special tokens by the
tokenizer's own post-processor (``longest_first`` for pairs, as transformers does), so the ids equal what
``tokenizer(q, d, truncation=True, max_length=...)`` returns. A rerank query is encoded once for all its documents.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["right", "left"]


class TokenizationError(ValueError):
    """The input cannot be tokenized (e.g. a token id outside the vocabulary)."""


@dataclass(frozen=True)
class Encoded:
    """One model input: token ids with special tokens, already truncated; ``length`` is the length before
    truncation (special tokens included), which is what limits and metrics are about."""

    ids: list[int]
    type_ids: list[int]
    length: int

    @property
    def tokens(self) -> int:
        return len(self.ids)


class InputTokenizer:
    """Encodes texts, (query, document) pairs and raw token ids for one model."""

    def __init__(self, hf_tokenizer: Any, max_length: int):
        backend = getattr(hf_tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise TypeError("serving needs a fast (Rust) tokenizer; this model has only a Python one")
        self.hf = hf_tokenizer
        self.max_length = max_length
        self.vocab_size = len(hf_tokenizer)
        self._plain = copy.deepcopy(backend)
        self._plain.no_truncation()
        self._plain.no_padding()
        self._truncators = {d: self._truncator(d) for d in ("right", "left")}
        empty = self._plain.encode("", add_special_tokens=False)
        self.special_single = len(self._plain.post_process(empty, None, add_special_tokens=True).ids)
        self.special_pair = len(self._plain.post_process(empty, empty, add_special_tokens=True).ids)

    def _truncator(self, direction: Direction):
        tok = copy.deepcopy(self._plain)
        tok.enable_truncation(self.max_length, strategy="longest_first", direction=direction)
        return tok

    def texts(self, texts: list[str], direction: Direction = "right") -> list[Encoded]:
        truncator = self._truncators[direction]
        out = []
        for enc in self._plain.encode_batch(texts, add_special_tokens=False):
            final = truncator.post_process(enc, None, add_special_tokens=True)
            out.append(Encoded(final.ids, final.type_ids, len(enc.ids) + self.special_single))
        return out

    def pairs(self, query: str, documents: list[str], direction: Direction = "right") -> list[Encoded]:
        truncator = self._truncators[direction]
        q = self._plain.encode(query, add_special_tokens=False)
        out = []
        for enc in self._plain.encode_batch(documents, add_special_tokens=False):
            final = truncator.post_process(q, enc, add_special_tokens=True)
            out.append(Encoded(final.ids, final.type_ids, len(q.ids) + len(enc.ids) + self.special_pair))
        return out

    def token_ids(self, rows: list[list[int]], direction: Direction = "right") -> list[Encoded]:
        """Pre-tokenized input (OpenAI's token-id ``input``): ids of *this* model's vocabulary, special tokens
        added here; an id outside the vocabulary is refused (it would index past the embedding table)."""
        room = self.max_length - self.special_single
        out = []
        for n, row in enumerate(rows):
            for i, tok in enumerate(row):
                if not 0 <= tok < self.vocab_size:
                    raise TokenizationError(f"input[{n}][{i}] = {tok} is not a token id of this model's "
                                            f"vocabulary (0..{self.vocab_size - 1})")
            kept = row if len(row) <= room else (row[:room] if direction == "right" else row[-room:])
            ids = list(self.hf.build_inputs_with_special_tokens(list(kept)))
            out.append(Encoded(ids, [0] * len(ids), len(row) + self.special_single))
        return out
