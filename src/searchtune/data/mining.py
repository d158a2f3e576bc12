"""Hard-negative mining: turn judged positives into (query, positive, negatives) triplets with the team's own BM25.

For each query of a split, BM25 top-k candidates come from a :class:`~searchtune.data.retriever.Retriever`
(the cluster's, batched ``msearch``, built by the CLI);
judged positives are removed and the rest pass a **false-negative guard** before the hardest survivors (highest BM25
rank first) become negatives.

The guard rule. Let ``s+`` be the BM25 score of the query's best judged positive (read from the top-k, or fetched
with an ``ids``-filtered search of the same query when the positive was not retrieved, so it is exact). A candidate
with score ``s`` is dropped when

* ``|s - s+| <= margin * |s+|`` (it scores *within a relative margin* of the positive: an unjudged document that
  BM25 can hardly tell from a known positive is too likely to be relevant itself), or
* ``s > s+`` and ``drop_above_positive`` (it is *ranked above* the positive).

So with the defaults (``margin=0.05``, ``drop_above_positive=True``) a candidate is kept only when
``s < 0.95 * s+``. Judged non-relevant documents (grade 0) are real negatives and always pass; a candidate whose
text equals a positive's text is always dropped. A query whose positive BM25 cannot match at all (``s+ = 0``) keeps no
BM25 negatives under ``drop_above_positive``; turn that off (``--guard margin``) to keep them.

Optionally, an embedding model (any name/path :func:`searchtune.scoring.load_scorer` accepts) mines dense negatives
from the whole corpus with the same rule applied to cosine similarities.

Large query sets are resumable: with ``output`` set, each finished batch is appended to a triplets JSONL file and
fsynced, then recorded in a checkpoint (``<output>.ckpt``: the settings, the finished query ids and the output's
byte length). A rerun with the same settings truncates the output to the last recorded length (dropping a batch
that was half-written when the process died) and continues after the finished queries.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from searchtune.data.examples import Triplet, append_records, read_triplets
from searchtune.data.records import Dataset, Document, Query
from searchtune.data.retriever import Retriever

log = logging.getLogger(__name__)

#: Default relative margin of the false-negative guard (candidates need a score below 95 % of the positive's).
DEFAULT_MARGIN = 0.05
CHECKPOINT_VERSION = 1


class MiningError(RuntimeError):
    """Mining cannot start or resume (bad settings, a checkpoint from other settings, an unusable model)."""


@dataclass(frozen=True)
class GuardRule:
    """The false-negative guard (see the module docstring)."""

    margin: float = DEFAULT_MARGIN
    drop_above_positive: bool = True

    def keeps(self, score: float, positive_score: float) -> bool:
        if abs(score - positive_score) <= self.margin * abs(positive_score):
            return False
        return not (self.drop_above_positive and score > positive_score)


@dataclass
class MiningResult:
    """Triplets (all of them, including those of an earlier interrupted run) and this run's statistics."""

    triplets: list[Triplet]
    queries: int = 0  #: queries processed by this run
    candidates: int = 0  #: retrieved candidates that are not judged positives
    dropped_by_guard: int = 0  #: candidates the false-negative guard removed
    dropped_duplicates: int = 0  #: candidates whose text equals a positive's
    positives_not_retrieved: int = 0  #: queries whose best positive was outside the BM25 top-k
    queries_without_negatives: int = 0  #: queries that kept no negative (no triplet written)
    queries_without_positives: int = 0  #: queries whose positives are all missing from the corpus
    resumed_queries: int = 0  #: queries finished by an earlier run and skipped
    dense_candidates: int = 0
    dense_dropped_by_guard: int = 0
    seconds: float = 0.0

    @property
    def drop_share(self) -> float:
        """Share of candidates removed by the guard (BM25 and dense together)."""
        total = self.candidates + self.dense_candidates
        return (self.dropped_by_guard + self.dense_dropped_by_guard) / total if total else 0.0

    @property
    def queries_per_second(self) -> float:
        return self.queries / self.seconds if self.seconds > 0 else 0.0

    def stats(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "triplets"}
        data.update(triplets=len(self.triplets), drop_share=round(self.drop_share, 4),
                    queries_per_second=round(self.queries_per_second, 2), seconds=round(self.seconds, 3))
        return data


@dataclass
class _Checkpoint:
    path: Path
    params: dict
    done: set[str] = field(default_factory=set)
    offset: int = 0

    @classmethod
    def open(cls, path: Path, params: dict, output: Path) -> "_Checkpoint":
        ckpt = cls(path=path, params=params)
        if path.exists():
            lines = []
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        lines.append(json.loads(line))
                    except json.JSONDecodeError:  # a line cut short when the last run died
                        continue
            if not lines or lines[0].get("params") != params:
                raise MiningError(f"checkpoint {path} was written with other settings ({lines[0].get('params') if lines else 'none'}); "
                                  f"use the same settings to resume, or delete it and {output} to start over")
            for entry in lines[1:]:
                ckpt.done.update(entry["done"])
                ckpt.offset = int(entry["offset"])
            size = output.stat().st_size if output.exists() else 0
            if size < ckpt.offset:
                raise MiningError(f"{output} is shorter ({size} bytes) than its checkpoint records ({ckpt.offset}); "
                                  f"delete {path} and {output} to start over")
            if size > ckpt.offset:  # a batch was being written when the last run stopped: drop it
                with open(output, "r+b") as handle:
                    handle.truncate(ckpt.offset)
                log.info("dropped %d bytes of an unfinished batch from %s", size - ckpt.offset, output)
            ckpt._rewrite()  # compact, and drop a cut-off last line before appending after it
        else:
            if output.exists() and output.stat().st_size > 0:
                raise MiningError(f"{output} exists but has no checkpoint ({path}); move it away or delete it first")
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(json.dumps({"version": CHECKPOINT_VERSION, "params": params}) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        return ckpt

    def _rewrite(self) -> None:
        from searchtune.data.examples import write_jsonl_atomic

        write_jsonl_atomic([{"version": CHECKPOINT_VERSION, "params": self.params},
                            {"done": sorted(self.done), "offset": self.offset}], self.path)

    def record(self, qids: list[str], offset: int) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"done": qids, "offset": offset}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.done.update(qids)
        self.offset = offset


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


class _DenseMiner:
    """Corpus embeddings held in memory; top-k by cosine for a batch of queries."""

    def __init__(self, model: Any, corpus: Mapping[str, Document], max_length: int, batch_size: int = 64):
        import torch

        from searchtune.scoring import load_scorer

        scorer = model if hasattr(model, "embed") else load_scorer(model, kind="embedding", max_length=max_length,
                                                                   batch_size=batch_size)
        if getattr(scorer, "kind", "embedding") != "embedding":
            raise MiningError(f"dense mining needs an embedding model, got a {scorer.kind}")
        self.scorer = scorer
        self.doc_ids = list(corpus)
        self.position = {did: i for i, did in enumerate(self.doc_ids)}
        started = time.perf_counter()
        texts = [corpus[d].full_text for d in self.doc_ids]
        chunks = [scorer.embed(texts[i:i + 1024]) for i in range(0, len(texts), 1024)]
        self.matrix = torch.cat(chunks) if chunks else torch.empty(0)
        log.info("embedded %d documents for dense mining in %.1fs", len(texts), time.perf_counter() - started)

    def search(self, texts: list[str], top_k: int) -> tuple[list[list[tuple[str, float]]], Any]:
        import torch

        sims = self.scorer.embed(texts) @ self.matrix.T
        values, indices = torch.topk(sims, k=min(top_k, sims.shape[1]), dim=1)
        hits = [[(self.doc_ids[j], float(v)) for v, j in zip(vrow.tolist(), irow.tolist())]
                for vrow, irow in zip(values, indices)]
        return hits, sims


def mine_negatives(retriever: Retriever, dataset: Dataset, split: str = "train", top_k: int = 30,
                   num_negatives: int = 7, margin: float = DEFAULT_MARGIN,
                   on_progress: Callable[[int], None] | None = None, *, drop_above_positive: bool = True,
                   batch_size: int = 32, output: str | Path | None = None, checkpoint: str | Path | None = None,
                   dense_model: Any = None, dense_negatives: int = 0, dense_top_k: int | None = None,
                   dense_max_length: int = 256, max_queries: int | None = None) -> MiningResult:
    """Mine hard negatives for every judged query of ``split`` (see the module docstring for the guard rule).

    Returns one triplet per (query, judged positive) with up to ``num_negatives`` negatives: ``dense_negatives`` of
    them from ``dense_model`` when given, the rest from BM25 (either source fills in when the other runs short).
    ``on_progress(n)`` is called with the number of queries finished (resumed ones first, in one call).
    """
    if top_k < 1 or num_negatives < 1:
        raise MiningError("top_k and num_negatives must be at least 1")
    if margin < 0:
        raise MiningError(f"margin must not be negative, got {margin}")
    if dense_negatives and dense_model is None:
        raise MiningError("dense_negatives needs a dense_model")
    if dense_negatives > num_negatives:
        raise MiningError(f"dense_negatives ({dense_negatives}) cannot exceed num_negatives ({num_negatives})")
    try:
        retriever.check()
    except LookupError as exc:
        raise MiningError(str(exc)) from None
    guard = GuardRule(margin=margin, drop_above_positive=drop_above_positive)
    qrels = dataset.split_qrels(split)
    queries = dataset.split_queries(split)
    if max_queries is not None:
        queries = dict(list(queries.items())[:max_queries])

    params = {**retriever.describe(), "dataset": dataset.name, "split": split, "top_k": top_k,
              "num_negatives": num_negatives, "margin": margin, "drop_above_positive": drop_above_positive,
              "dense_model": str(getattr(dense_model, "name", dense_model) or ""),
              "dense_negatives": dense_negatives}
    out_path = Path(output) if output is not None else None
    ckpt: _Checkpoint | None = None
    if out_path is not None:
        ckpt = _Checkpoint.open(Path(checkpoint) if checkpoint else out_path.with_name(out_path.name + ".ckpt"),
                                params, out_path)
    result = MiningResult(triplets=[])
    pending = list(queries.items())
    if ckpt is not None and ckpt.done:
        pending = [(qid, q) for qid, q in pending if qid not in ckpt.done]
        result.resumed_queries = len(queries) - len(pending)
        if on_progress and result.resumed_queries:
            on_progress(result.resumed_queries)

    dense = _DenseMiner(dense_model, dataset.corpus, dense_max_length) if dense_model is not None and pending else None
    started = time.perf_counter()
    handle = open(out_path, "a", encoding="utf-8") if out_path is not None else None
    try:
        for start in range(0, len(pending), batch_size):
            batch = dict(pending[start:start + batch_size])
            triplets = _mine_batch(retriever, dataset, qrels, batch, top_k, num_negatives, guard,
                                   dense, dense_negatives, dense_top_k or top_k, result)
            if handle is not None and ckpt is not None:
                append_records(handle, triplets)
                ckpt.record(list(batch), handle.tell())
            else:
                result.triplets.extend(triplets)
            result.queries += len(batch)
            if on_progress:
                on_progress(len(batch))
    finally:
        if handle is not None:
            handle.close()
        result.seconds = time.perf_counter() - started
    if out_path is not None:
        result.triplets = read_triplets(out_path) if out_path.exists() else []
    return result


def _mine_batch(retriever: Retriever, dataset: Dataset, qrels: Mapping[str, Mapping[str, int]],
                batch: dict[str, Query], top_k: int, num_negatives: int, guard: GuardRule,
                dense: _DenseMiner | None, dense_negatives: int, dense_top_k: int,
                result: MiningResult) -> list[Triplet]:
    run, retrieved = retriever.retrieve(batch, top_k, with_source=True)
    positives = {qid: [d for d, g in qrels[qid].items() if g > 0 and d in dataset.corpus] for qid in batch}
    missing = {qid: (batch[qid].text, pos) for qid, pos in positives.items()
               if pos and not any(d in run.get(qid, {}) for d in pos)}
    result.positives_not_retrieved += len(missing)
    fetched = retriever.best_score_among(missing)

    dense_hits: list[list[tuple[str, float]]] = []
    dense_sims = None
    if dense is not None:
        dense_hits, dense_sims = dense.search([q.text for q in batch.values()], dense_top_k + 8)

    triplets: list[Triplet] = []
    for row, (qid, query) in enumerate(batch.items()):
        pos = positives[qid]
        if not pos:
            result.queries_without_positives += 1
            continue
        judged_negative = {d for d, g in qrels[qid].items() if g <= 0}
        positive_texts = {_normal(dataset.corpus[d].full_text) for d in pos}
        hits = run.get(qid, {})
        best = max((hits[d] for d in pos if d in hits), default=None)
        best = fetched.get(qid, 0.0) if best is None else best

        def survivors(candidates: list[tuple[str, float]], positive_score: float, dense_source: bool) -> list[str]:
            kept: list[str] = []
            for did, score in candidates:
                if did in pos:
                    continue
                if dense_source:
                    result.dense_candidates += 1
                else:
                    result.candidates += 1
                doc = dataset.corpus.get(did) or retrieved.get(did)
                if doc is None:
                    continue
                if _normal(doc.full_text) in positive_texts:
                    result.dropped_duplicates += 1
                    continue
                if did not in judged_negative and not guard.keeps(score, positive_score):
                    if dense_source:
                        result.dense_dropped_by_guard += 1
                    else:
                        result.dropped_by_guard += 1
                    continue
                kept.append(did)
            return kept

        bm25_kept = survivors(sorted(hits.items(), key=lambda kv: -kv[1]), best, dense_source=False)
        chosen: list[str]
        if dense is not None and dense_sims is not None:
            best_dense = max(float(dense_sims[row, dense.position[d]]) for d in pos)
            dense_kept = [d for d in survivors(dense_hits[row][:dense_top_k + len(pos)], best_dense, True)]
            from_dense = [d for d in dense_kept if d not in bm25_kept][:dense_negatives]
            from_bm25 = bm25_kept[:num_negatives - len(from_dense)]
            chosen = from_bm25 + from_dense
            if len(chosen) < num_negatives:  # dense short of its share: fill from the rest of either source
                extra = [d for d in bm25_kept + dense_kept if d not in chosen]
                chosen += extra[:num_negatives - len(chosen)]
        else:
            chosen = bm25_kept[:num_negatives]
        if not chosen:
            result.queries_without_negatives += 1
            continue
        texts = [(dataset.corpus.get(d) or retrieved[d]).full_text for d in chosen]
        for pid in pos:
            triplets.append(Triplet(query=query.text, positive=dataset.corpus[pid].full_text, negatives=texts,
                                    query_id=qid, positive_id=pid, negative_ids=list(chosen)))
    return triplets
