"""Embed texts with whatever the user names: a model folder, an HF id, a registry ref (``name@prod``), or a running
embedding endpoint (`searchtune serve`, TEI, any OpenAI-compatible server).

Indexing, re-embedding and in-process hybrid evaluation all take an :class:`Embedder`, so an index can be built by
the very server that will later embed the queries. Every embedder reports its :class:`ModelIdentity`, the vector
dimension and the similarity the vectors are meant for; the index records them in its metadata.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import numpy as np

from searchtune.vectors.identity import ModelIdentity, model_fingerprint

log = logging.getLogger(__name__)

#: Tokens per text when embedding in-process; `searchtune serve` must use the same to produce the same vectors.
DEFAULT_MAX_LENGTH = 256
#: sentence-transformers similarity names -> Elasticsearch dense_vector similarity (vectors are unit length).
_ES_SIMILARITY = {"cosine": "cosine", "dot": "dot_product", "dot_product": "dot_product", "euclidean": "l2_norm",
                  "manhattan": "l2_norm"}


def es_similarity(similarity_fn_name: str | None) -> str:
    """Elasticsearch's dense_vector similarity for a sentence-transformers model's similarity function."""
    return _ES_SIMILARITY.get(str(similarity_fn_name or "cosine"), "cosine")


class EmbedderError(RuntimeError):
    """The model could not be loaded or the endpoint did not answer with embeddings; the message names which."""


class Embedder(Protocol):
    identity: ModelIdentity
    dims: int
    similarity: str   # Elasticsearch dense_vector similarity
    max_length: int | None

    def embed(self, texts: list[str]) -> np.ndarray: ...   # (n, dims) float32, unit length

    def close(self) -> None: ...


@dataclass
class LocalEmbedder:
    """sentence-transformers in this process (the same scorer evaluation and training use)."""

    scorer: object
    identity: ModelIdentity
    dims: int
    similarity: str
    max_length: int | None

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        return self.scorer.embed(texts).cpu().numpy().astype(np.float32, copy=False)

    def close(self) -> None:
        pass


class HttpEmbedder:
    """An embedding endpoint: OpenAI ``/v1/embeddings`` through the openai SDK, or TEI ``/embed``.

    ``url`` is the server's base URL (OpenAI route assumed) or the route itself. The model's identity comes from
    ``GET /v1/models`` (what `searchtune serve` answers, fingerprint included); a server that does not answer it is
    identified by the model name it reports in its embeddings answers."""

    def __init__(self, url: str, model: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                 batch_size: int = 64):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise EmbedderError(f"not an http(s) URL: {url!r}")
        path = parts.path.rstrip("/")
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.route = "tei" if path.endswith("/embed") else "openai"
        self.prefix = path[: -len("/embed")] if self.route == "tei" else path.removesuffix("/embeddings").removesuffix("/v1")
        self.batch_size = batch_size
        self.model = model
        key = api_key or os.environ.get("SEARCHTUNE_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.base + self.prefix, timeout=timeout, headers=headers)
        self._openai = None
        if self.route == "openai":
            from openai import OpenAI

            self._openai = OpenAI(base_url=f"{self.base}{self.prefix}/v1", api_key=key or "unused", timeout=timeout,
                                  max_retries=3)
        self.identity = self._identify()
        probe = self._embed_batch(["dimension probe"])
        self.dims = int(probe.shape[1])
        self.similarity = "cosine"
        self.max_length = None

    def _identify(self) -> ModelIdentity:
        try:
            response = self._http.get("/v1/models")
            data = response.json().get("data") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise EmbedderError(f"{self.base}{self.prefix}: cannot reach the embedding endpoint: {exc}") from exc
        if data:
            entry = data[0]
            version = entry.get("version")
            name = str(entry.get("id") or self.model or self.base)
            ident = f"{name}@{version}" if version is not None and "@" not in name else name
            return ModelIdentity(id=self.model or ident, version=version, fingerprint=entry.get("fingerprint"))
        return ModelIdentity(id=self.model or f"{self.base}{self.prefix}")

    def embed(self, texts: list[str]) -> np.ndarray:
        chunks = [self._embed_batch(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, getattr(self, "dims", 0)), dtype=np.float32)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        try:
            if self._openai is not None:
                from openai import OpenAIError

                try:
                    answer = self._openai.embeddings.create(input=texts, model=self.model or "default",
                                                            encoding_format="float")
                except OpenAIError as exc:
                    raise EmbedderError(f"{self.base}{self.prefix}/v1/embeddings: {exc}") from exc
                rows = [item.embedding for item in sorted(answer.data, key=lambda item: item.index)]
            else:
                response = self._http.post("/embed", json={"inputs": texts, "normalize": True})
                response.raise_for_status()
                rows = response.json()
        except httpx.HTTPError as exc:
            raise EmbedderError(f"{self.base}{self.prefix}/embed: {exc}") from exc
        vectors = np.asarray(rows, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise EmbedderError(f"{self.base}{self.prefix}: expected {len(texts)} embeddings, got shape {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def close(self) -> None:
        self._http.close()
        if self._openai is not None:
            self._openai.close()


def open_embedder(spec: str | None, *, max_length: int = DEFAULT_MAX_LENGTH, precision: str = "auto",
                  batch_size: int = 64, api_key: str | None = None, store: str | None = None) -> Embedder:
    """``spec``: http(s) URL, an existing folder, a registry ref (``name``, ``name@3``, ``name@prod``), an HF id,
    or ``None``/``default`` for the bundled base model."""
    if spec and spec.startswith(("http://", "https://")):
        return HttpEmbedder(spec, api_key=api_key, batch_size=batch_size)
    path, identity = resolve_local_model(spec, store)
    from searchtune.scoring import load_scorer

    try:
        scorer = load_scorer(path, kind="embedding", precision=precision, max_length=max_length,
                             batch_size=batch_size)
    except (OSError, ValueError) as exc:
        raise EmbedderError(f"cannot load embedding model '{spec}': {exc}") from exc
    model = scorer.model
    dims = int(getattr(model, "get_embedding_dimension", model.get_sentence_embedding_dimension)())
    similarity = es_similarity(getattr(model, "similarity_fn_name", None))
    return LocalEmbedder(scorer=scorer, identity=identity, dims=dims, similarity=similarity, max_length=max_length)


def resolve_local_model(spec: str | None, store: str | None) -> tuple[str, ModelIdentity]:
    from searchtune.models import resolve_model
    from searchtune.registry.registry import ModelRegistry, ModelRef, RegistryError

    candidate = Path(spec).expanduser() if spec and spec != "default" else None
    if candidate is not None and not candidate.exists() and "/" not in spec:
        registry = ModelRegistry(store)
        try:
            ref = ModelRef.parse(spec)
            if ref.name in registry.names():
                name, version = registry.resolve_version(ref)
                folder = registry.resolve(f"{name}@{version}")
                return str(folder), ModelIdentity(id=f"{name}@{version}", version=version,
                                                  fingerprint=model_fingerprint(folder))
        except RegistryError as exc:
            raise EmbedderError(str(exc)) from exc
        if "@" in spec:
            raise EmbedderError(f"'{spec}' is neither a folder nor a model in the registry at {registry.uri}")
    path = resolve_model(spec)
    return path, ModelIdentity(id=Path(path).name if Path(path).exists() else path,
                               fingerprint=model_fingerprint(path))


class RememberingEmbedder:
    """Another embedder that keeps every text's vector: choosing the deployed stack embeds the corpus for exact
    kNN, and indexing the winner's vectors then costs no second pass over the corpus."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.identity, self.dims, self.similarity, self.max_length = (inner.identity, inner.dims, inner.similarity,
                                                                      inner.max_length)
        self._vectors: dict[str, np.ndarray] = {}

    def remember(self, texts: list[str], vectors: np.ndarray) -> None:
        """Vectors of ``texts`` computed earlier by the same model (e.g. read from a cache)."""
        self._vectors.update(zip(texts, vectors))

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            self._vectors.update(zip(missing, self.inner.embed(missing)))
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32, copy=False)

    def close(self) -> None:
        self.inner.close()
