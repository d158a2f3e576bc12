"""The serving backend as an in-process :class:`~searchtune.vectors.embedders.Embedder`.

Why: choosing what to deploy (train/choose.py) embeds the whole corpus with each candidate model, and the winner's
vectors then go into the index unchanged. Run through the backend `searchtune serve` will use (``auto``: OpenVINO's
bf16 network on AMX CPUs), those vectors are the ones the server would compute for the same documents, and on the
2-core AMX machine the pass is faster than torch autocast (SciFact abstracts at 256 tokens: 56 against 44 docs/s,
docs/training.md). Texts are tokenized once, sorted by length and packed into batches bounded by inputs and padded
tokens, exactly as the server's batcher packs them.
"""

from __future__ import annotations

import logging

import numpy as np

from searchtune.serve.backends import Backend, BackendError, load_backend
from searchtune.serve.batcher import token_bounded_batches
from searchtune.vectors.embedders import (DEFAULT_MAX_LENGTH, Embedder, es_similarity, open_embedder,
                                          resolve_local_model)
from searchtune.vectors.identity import ModelIdentity

log = logging.getLogger(__name__)

#: Batch bounds for a corpus pass (the server's defaults: settings.ServeSettings).
MAX_BATCH_INPUTS = 64
MAX_BATCH_TOKENS = 16384


class BackendEmbedder:
    """Embeds with a loaded serving :class:`Backend`; vectors are unit length, float32, in input order."""

    def __init__(self, backend: Backend, identity: ModelIdentity, max_length: int):
        self.backend = backend
        self.identity = identity
        self.max_length = max_length
        self.dims = int(backend.card.dimension or 0)
        self.similarity = es_similarity(getattr(backend.model, "similarity_fn_name", None))

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        units = self.backend.tokenizer.texts(texts)
        vectors = np.zeros((len(units), self.dims), dtype=np.float32)
        for batch in token_bounded_batches(list(range(len(units))), lambda i: units[i].tokens,
                                           MAX_BATCH_INPUTS, MAX_BATCH_TOKENS):
            vectors[batch] = np.stack(self.backend.run([units[i] for i in batch]))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def close(self) -> None:
        self.backend.close()


def open_serving_embedder(spec: str | None, *, max_length: int = DEFAULT_MAX_LENGTH,
                          store: str | None = None) -> Embedder:
    """``spec`` (a folder, registry ref, HF id or URL, as :func:`open_embedder` takes) on the backend `searchtune
    serve` picks for this machine; an http(s) URL, or a model the backend cannot load, falls back to
    :func:`open_embedder` (with the reason logged), so a choice is never lost to an optimisation."""
    if spec and spec.startswith(("http://", "https://")):
        return open_embedder(spec, max_length=max_length, store=store)
    path, identity = resolve_local_model(spec, store)
    try:
        backend = load_backend(path, max_length=max_length, kind="embedding")
    except (BackendError, OSError, ValueError, RuntimeError) as exc:
        log.warning("embedding with sentence-transformers instead of the serving backend: %s", exc)
        return open_embedder(spec, max_length=max_length, store=store)
    log.info("embedding with %s (%s) for %s", backend.backend, backend.precision, identity.id)
    return BackendEmbedder(backend, identity, max_length)
