"""The ``--hybrid MODEL`` part of ``searchtune eval``: kNN with the model, fused with BM25, tuned on dev.

kNN runs ``exact`` (the corpus embedded in-process) or ``es`` (the index's own vectors, the search the gateway
sends). ``auto`` uses the index's vectors when its metadata says this very model built them, since a kNN search
over vectors of another model is meaningless.
"""

from __future__ import annotations

import json
from pathlib import Path

from searchtune.cli.common import fail, out, progress_bar
from searchtune.data import DatasetError
from searchtune.eval.hybrid import es_knn_run, exact_knn_run, hybrid_run, latency_summary, tune_hybrid_weight
from searchtune.eval.metrics import evaluate
from searchtune.search.retrieval import bm25_search, parse_fields
from searchtune.vectors.fusion import DEFAULT_WEIGHT, Fusion


def card_hybrid_weight(model: str) -> float | None:
    """The dev-tuned hybrid weight ``train embed`` stored in the model's training.json, if any."""
    try:
        from searchtune.vectors.embedders import resolve_local_model

        folder, _ = resolve_local_model(model, None)
        record = Path(folder) / "training.json"
        weight = (json.loads(record.read_text()).get("hybrid") or {}).get("weight") if record.is_file() else None
    except Exception:  # noqa: BLE001 - no card, no default: the caller falls back
        return None
    return float(weight) if weight is not None else None


def index_vectors(client, index: str) -> dict | None:
    from searchtune.vectors.mapping import read_vector_meta

    try:
        return read_vector_meta(dict(client.indices.get_mapping(index=index)))
    except Exception:  # noqa: BLE001 - no mapping access: exact kNN
        return None


def run_hybrid(*, ds, client, index, fields, split, queries, qrels, bm25, results, payload, model, knn_mode,
               method, weight, rank_constant, tune, dev_split, num_candidates, top_k, es_url,
               max_length=256, precision="auto"):
    """Adds ``hybrid ...`` (and ``kNN ...``) systems; returns the fused run."""
    from searchtune.cli.eval import _dev_queries
    from searchtune.eval.rerank import wins_losses
    from searchtune.vectors.embedders import EmbedderError, open_embedder
    from searchtune.vectors.mapping import meta_identity

    try:
        embedder = open_embedder(model, max_length=max_length, precision=precision)
    except EmbedderError as exc:
        fail(str(exc))
    vectors = index_vectors(client, index)
    indexed_by = meta_identity(vectors)
    same_model = bool(indexed_by and indexed_by.matches(embedder.identity)[0])
    if knn_mode == "es" and not same_model:
        why = indexed_by.matches(embedder.identity)[1] if indexed_by else f"'{index}' has no vectors"
        fail(f"--knn es needs the index's vectors to come from {embedder.identity.id}: {why}")
    mode = "es" if knn_mode == "es" or (knn_mode == "auto" and same_model) else "exact"
    corpus_vectors = None

    def knn(qs, desc):
        nonlocal corpus_vectors
        if mode == "es":
            with progress_bar(desc, len(qs)) as advance:
                return es_knn_run(client, index, vectors["field"], embedder, qs, k=top_k,
                                  num_candidates=num_candidates, on_progress=advance)
        with progress_bar(f"{desc} (exact; corpus embedded once)", len(ds.corpus)) as advance:
            result, corpus_vectors = exact_knn_run(embedder, ds.corpus, qs, k=top_k, doc_vectors=corpus_vectors,
                                                   on_progress=advance)
        return result

    try:
        knn_test = knn(queries, f"kNN {split}")
        results[f"kNN {embedder.identity.id}"] = evaluate(qrels, knn_test.run)
        info: dict = {"model": embedder.identity.to_dict(), "knn": mode, "k": top_k, "num_candidates": num_candidates}
        if method == "linear" and tune:
            dev_q, dev_qrels, dev_name = _dev_queries(ds, model, dev_split, split)
            dev_bm25, _ = bm25_search(client, index, dev_q, fields=parse_fields(fields), top_k=top_k)
            choice = tune_hybrid_weight(dev_qrels, dev_bm25, knn(dev_q, f"kNN dev ({dev_name})").run)
            weight = choice.weight
            info["tuned"] = {"on": dev_name, "dev_queries": len(dev_q), "dev_ndcg@10": choice.value,
                             "curve": choice.curve}
            out.print(f"hybrid weight {weight:.2f} tuned on {dev_name} ({len(dev_q)} queries, dev NDCG@10 "
                      f"{choice.value:.4f})")
        elif weight is None:
            weight = card_hybrid_weight(model)
            info["weight_from"] = "model card (train embed, dev)" if weight is not None else "default"
            weight = DEFAULT_WEIGHT if weight is None else weight
    except DatasetError as exc:
        fail(str(exc))
    except EmbedderError as exc:
        fail(str(exc))
    finally:
        embedder.close()
    fusion = Fusion(method, weight=weight, rank_constant=rank_constant)
    fused = hybrid_run(bm25, knn_test.run, fusion, depth=top_k)
    label = f"hybrid {fusion.method} " + (f"(w={weight:.2f})" if method == "linear" else f"(k={rank_constant})")
    results[label] = evaluate(qrels, fused)
    info["fusion"] = fusion.describe()
    if knn_test.latencies_ms:
        info["knn_latency_ms"] = payload["latency_ms"] = latency_summary(knn_test.latencies_ms)
    payload["hybrid"] = info
    payload.setdefault("wins_losses", {})[label] = wins_losses(results["BM25"], results[label]).to_dict()
    return fused
