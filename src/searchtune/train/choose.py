"""What to deploy after training an embedder (``searchtune train embed`` and the quickstart): BM25 alone, the
untrained base embedder fused with BM25, or the tuned embedder fused with BM25, validated on the judged training
queries (eval/selection.py).

With few judged queries (below ``KFOLD_BELOW``, measured in docs/choosing.md) every judged training query is scored
out of fold by 5-fold cross-validation; with many, the dev carve the training run held out decides. The tuned
model was trained on the train part, so it is a k-fold candidate only with models trained without each fold; the
trainer makes one model, so in k-fold mode the tuned stack is left out (and said so) rather than scored on
queries it learnt from: the deployed stack is then the better zero-shot one. Both zero-shot candidates need only
BM25 and one embedding of the corpus with the base model; the embedders remember their vectors, so indexing the
winner's vectors costs no second pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from searchtune.data.records import Dataset
from searchtune.eval.selection import (DEFAULT_FOLDS, HybridCandidate, RunCandidate, Selection, choose_stack,
                                       dev_split, judged_ids, kfold_splits, validation_mode)

BM25, ZERO_SHOT, TUNED = "BM25", "zero-shot hybrid", "tuned hybrid"


@dataclass
class StackChoice:
    selection: Selection
    embedders: dict[str, Any] = field(default_factory=dict)   # candidate name -> RememberingEmbedder (open)
    left_out: dict[str, str] = field(default_factory=dict)   # candidate name -> why it was not validated

    @property
    def winner(self) -> str:
        return self.selection.winner

    @property
    def weight(self) -> float | None:
        return self.selection.candidates[self.winner].params.get("weight")

    def embedder(self):
        return self.embedders.get(self.winner)

    def close(self, keep: Any = None) -> None:
        for embedder in self.embedders.values():
            if embedder is not keep:
                embedder.close()

    def to_dict(self) -> dict:
        return self.selection.to_dict() | {"left_out": self.left_out, "deployed_weight": self.weight}

    def lines(self) -> list[str]:
        """The report's words: which stack won, by how much over the zero-shot stack and BM25, how sure."""
        s = self.selection
        out = [s.summary()]
        if s.margin_over_bm25 is not None and s.winner not in (BM25, s.reference):
            low, high = s.margin_over_bm25_ci95 or (0.0, 0.0)
            out.append(f"{s.winner} vs BM25 on the same validation: {s.margin_over_bm25:+.4f} NDCG@10 "
                       f"(95% CI {low:+.4f}..{high:+.4f})")
        out += [f"{name}: validation NDCG@10 {c.mean:.4f} (per fold {', '.join(f'{v:.3f}' for v in c.per_fold)})"
                for name, c in s.candidates.items()]
        out += [f"{name} not a candidate: {why}" for name, why in self.left_out.items()]
        return out


def judged_training_qrels(dataset: Dataset, splits: tuple[str, ...] = ("train", "dev")) -> dict:
    """Every judged query the user gave for training: the train part and the dev carve together."""
    qrels: dict = {}
    for name in splits:
        qrels |= dataset.qrels.get(name, {})
    return {q: qrels[q] for q in judged_ids(qrels)}


def _runtime(embedder) -> str:
    """What computes the vectors (torch, or a serving backend and its precision): each gives slightly different
    floats, so cached vectors are kept per runtime."""
    inner = getattr(embedder, "inner", embedder)
    backend = getattr(inner, "backend", None)
    return f"{backend.backend}/{backend.precision}" if backend is not None else type(inner).__name__


def _knn(embedder, corpus, queries, cache: Path | None):
    """Exact kNN; the base model's corpus vectors are cached (keyed by model, length and texts) and remembered."""
    from searchtune.eval.hybrid import exact_knn_run

    ids = list(corpus)
    texts = [corpus[d].full_text for d in ids]
    path = None
    if cache is not None:
        digest = hashlib.sha256(json.dumps([embedder.identity.fingerprint, embedder.max_length, _runtime(embedder),
                                            ids, texts]).encode()).hexdigest()[:24]
        path = cache / f"vectors-{digest}.npy"
    if path is not None and path.is_file():
        vectors = np.load(path)
        embedder.remember(texts, vectors)
        return exact_knn_run(embedder, corpus, queries, k=100, doc_vectors=vectors)[0]
    knn, vectors = exact_knn_run(embedder, corpus, queries, k=100)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return knn


def choose_deployed_stack(client, dataset: Dataset, qrels: dict, index: str, fields: str, model_dir: str,
                          record: dict, max_length: int, seed: int, say, folds: int = DEFAULT_FOLDS,
                          validation: str = "auto", cache: Path | None = None,
                          open_embedder: Callable[..., Any] | None = None) -> StackChoice:
    """Validate BM25, the zero-shot hybrid and (dev mode) the tuned hybrid on ``qrels``, the judged training
    queries (train part and dev carve); the dev carve is ``record["data"]["dev_queries"]``.

    ``validation``: ``auto`` (k-fold below the measured threshold, else the dev carve), ``kfold`` or ``dev``;
    ``cache``: where the base model's corpus vectors are kept between runs; ``open_embedder(spec, max_length=)``:
    what embeds the corpus (default: sentence-transformers in this process; the CLI and the quickstart pass the
    serving backend's, serve/embedder.py, so the vectors are the server's and the pass is faster)."""
    from searchtune.search.retrieval import bm25_search, parse_fields
    from searchtune.vectors.embedders import RememberingEmbedder
    from searchtune.vectors.embedders import open_embedder as open_in_torch

    open_embedder = open_embedder or open_in_torch

    queries = {q: dataset.queries[q] for q in qrels}
    bm25, _ = bm25_search(client, index, queries, fields=parse_fields(fields), top_k=100)
    mode = validation_mode(len(qrels)) if validation == "auto" else validation
    dev_ids = [q for q in (record.get("data") or {}).get("dev_queries") or [] if q in qrels]
    if mode == "dev" and not dev_ids:
        mode = "kfold"   # no carve to decide on: cross-validate over everything instead
    choice = StackChoice(selection=None)  # type: ignore[arg-type]
    wanted = {ZERO_SHOT: None}
    if mode == "dev":
        wanted[TUNED] = model_dir
    else:
        choice.left_out[TUNED] = (f"k-fold over {len(qrels)} judged queries: the tuned model learnt from the "
                                  "queries it would be scored on, and no per-fold models were trained")
    candidates = [RunCandidate(BM25, qrels, bm25)]
    for name, spec in wanted.items():
        embedder = RememberingEmbedder(open_embedder(spec, max_length=max_length))
        choice.embedders[name] = embedder
        say(f"{name}: embedding {len(dataset.corpus)} documents for exact kNN on {len(qrels)} judged queries")
        knn = _knn(embedder, dataset.corpus, queries, cache if name == ZERO_SHOT else None)
        candidates.append(HybridCandidate(name, qrels, bm25, knn=knn.run, zero_shot=name == ZERO_SHOT, kind=name))
    splits = dev_split(dev_ids, dev_ids) if mode == "dev" else kfold_splits(list(qrels), folds, seed)
    choice.selection = choose_stack(qrels, candidates, splits, mode=mode, reference=ZERO_SHOT)
    for line in choice.lines():
        say(line)
    return choice
